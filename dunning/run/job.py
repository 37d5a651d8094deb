"""The line: billing state → plan → ledger → claim → render → MIME → SMTP → ledger."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from datetime import datetime
from pathlib import Path

import uvloop
from sqlalchemy import Engine

from dunning import ledger, links, store
from dunning.planning import candidates
from dunning.planning import notice_context
from dunning.billing.contract import Account
from dunning.errors import DeliveryError, TemplateError
from dunning.delivery.mime import MessageError, address_domain, build_message, make_message_id
from dunning.emails.render import Renderer
from dunning.settings import Settings
from dunning.delivery.transport import SmtpTransport
from dunning.run.workers import DeliveryWorkers

log = logging.getLogger("dunning.run")

EXIT_OK, EXIT_FAILED, EXIT_PENDING = 0, 1, 75
COLLECT_EVERY = 20_000  # new container objects between two passes of the cycle collector
IDLE_POLL_SECONDS = 0.05


@dataclass
class RunSummary:
    planned: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    superseded: int = 0
    deferred: int = 0
    stopped: str | None = None

    def exit_code(self) -> int:
        """0: all handled; 1: something failed or its outcome is unknown; 75: retries pending or stopped."""
        if self.failed or self.unknown:
            return EXIT_FAILED
        if self.retried or self.stopped:
            return EXIT_PENDING
        return EXIT_OK

    def as_dict(self) -> dict:
        return asdict(self)

    def add(self, other: dict) -> None:
        """Fold in a delivery worker's counts."""
        for name in ("sent", "retried", "failed", "unknown"):
            setattr(self, name, getattr(self, name) + other[name])
        self.stopped = self.stopped or other["stopped"]


Progress = Callable[[str, int], None]  # (what happened, how many)


def run(settings: Settings, *, as_of: datetime, dry_run: bool = False,
        progress: Progress = lambda what, n: None) -> RunSummary:
    """Plan and enqueue while helper processes deliver, then deliver with them until the queue is empty."""
    keys = links.require_signing_key(settings.links)
    renderer = make_renderer(settings)
    engine = store.connect(settings.database.url)
    summary = RunSummary()
    with fewer_collections():
        if dry_run:
            enqueue_plan(engine, settings, renderer, keys, as_of, summary, progress, dry_run=True)
            return summary
        summary.unknown += ledger.expire_leases(engine, now=store.utcnow(),
                                                unknown_policy=settings.delivery.unknown)
        with DeliveryWorkers(settings, settings.delivery.workers - 1, renderer) as helpers:
            enqueue_plan(engine, settings, renderer, keys, as_of, summary, progress)
            helpers.planning_done()
            run_loop(deliver(engine, settings, renderer, summary, progress))
            for counts in helpers.results():
                summary.add(counts)
    return summary


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's cycle collector every 20,000 new objects instead of 700, for the duration of a run.

    Nearly everything a notice allocates is freed as soon as it is done with; the default threshold
    still runs a pass every few notices, 4% of a run's CPU. The forked workers inherit the setting.
    """
    before = gc.get_threshold()
    gc.set_threshold(COLLECT_EVERY, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def enqueue_plan(engine: Engine, settings: Settings, renderer: Renderer, keys: list[str], as_of: datetime,
                 summary: RunSummary, progress: Progress, *, dry_run: bool = False) -> None:
    """Plan every candidate batch and put what is due in the outbox."""
    for accounts, planned in candidates.iter_batches(engine, as_of, settings, renderer.available_locales):
        entries = plan_entries(planned, accounts, settings, keys, summary)
        progress("planned", len(entries))
        if entries and not dry_run:
            ledger.enqueue(engine, entries, now=store.utcnow())


def run_loop(coroutine) -> None:
    """Run the delivery loop on uvloop: its event loop costs far less per SMTP round trip."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coroutine)


def make_renderer(settings: Settings) -> Renderer:
    """The renderer over the configured templates and catalogs."""
    return Renderer(Path(settings.i18n.templates_dir), Path(settings.i18n.locales_dir),
                    default_locale=settings.i18n.default_locale)


def plan_entries(planned: Iterable, accounts: Iterable[Account], settings: Settings, keys: list[str],
                 summary: RunSummary) -> list[ledger.OutboxEntry]:
    """Outbox entries for one batch of planned notices; deferred ones are only counted."""
    by_id = {a.id: a for a in accounts}
    entries = []
    for notice in planned:
        if notice.status == "deferred":
            summary.deferred += 1
            continue
        if notice.status == "send":
            summary.planned += 1
        else:
            setattr(summary, notice.status, getattr(summary, notice.status) + 1)
        entries.append(outbox_entry(notice, by_id[notice.account], settings, keys))
    return entries


def outbox_entry(notice, account: Account, settings: Settings, keys: list[str]) -> ledger.OutboxEntry:
    """The ledger's record of one planned notice, with everything needed to send it later."""
    message_id = payload = None
    if notice.status == "send":
        first_key = notice.keys[0]
        url = links.settlement_url(settings.links, account=notice.account,
                                   payment_method=notice.payment_method, key=first_key)
        context = notice_context.build_context(notice, account, settings, url)
        payload = notice_context.to_json({"to": list(notice.to), "cc": list(notice.cc),
                                          "locale": notice.locale, "context": context})
        message_id = make_message_id(first_key, address_domain(settings.sender.from_address))
    return ledger.OutboxEntry(account=notice.account, payment_method=notice.payment_method,
                              notice=notice.notice, stage=notice.stage, locale=notice.locale,
                              status=notice.status, keys=tuple(notice.keys), message_id=message_id,
                              payload=payload)


async def deliver(engine: Engine, settings: Settings, renderer: Renderer, summary: RunSummary,
                  progress: Progress, *, more_coming: Callable[[], bool] = lambda: False) -> None:
    """Claim batches and send them until the queue is empty (and no more is coming) or delivery must stop."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    password = settings.smtp.password.get_secret_value() if settings.smtp.password else None
    delivery = settings.delivery
    async with SmtpTransport(settings.smtp, password=password) as transport:
        while summary.stopped is None:
            claims = ledger.claim(engine, worker=worker, limit=delivery.batch_size, now=store.utcnow(),
                                  lease_seconds=delivery.lease_seconds)
            if not claims:
                if more_coming():
                    await asyncio.sleep(IDLE_POLL_SECONDS)
                    continue
                break
            async with keep_leased(engine, claims, delivery.lease_seconds):
                outcomes = await send_batch(claims, settings, renderer, transport, summary)
            results = [r for r in outcomes if r is not None]
            counts = ledger.record(engine, results, now=store.utcnow(), max_attempts=delivery.max_attempts,
                                   backoff_seconds=delivery.retry_backoff_seconds)
            ledger.unclaim(engine, [c for c, r in zip(claims, outcomes) if r is None], now=store.utcnow())
            tally(summary, counts)
            progress("sent", counts.sent)


async def send_batch(claims: list[ledger.Claim], settings: Settings, renderer: Renderer,
                     transport: SmtpTransport, summary: RunSummary) -> list[ledger.Result | None]:
    """send_claim for each claim, in order, a few at a time: twice as many as there are connections.

    A send renders and builds its message before it waits for a connection; were the whole batch
    started at once, every message of the batch would be held in memory while four connections work.
    """
    results: list[ledger.Result | None] = [None] * len(claims)
    pending = iter(enumerate(claims))

    async def lane() -> None:
        for n, claim in pending:
            results[n] = await send_claim(claim, settings, renderer, transport, summary)

    await asyncio.gather(*(lane() for _ in range(min(len(claims), 2 * settings.smtp.concurrency))))
    return results


@asynccontextmanager
async def keep_leased(engine: Engine, claims: list[ledger.Claim], lease_seconds: int):
    """Renew the batch's lease while it is being sent, so no other worker takes it over as abandoned."""
    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(lease_seconds / 3)
            ledger.extend_leases(engine, claims, now=store.utcnow(), lease_seconds=lease_seconds)

    task = asyncio.create_task(heartbeat())
    try:
        yield
    finally:
        task.cancel()


async def send_claim(claim: ledger.Claim, settings: Settings, renderer: Renderer,
                     transport: SmtpTransport, summary: RunSummary) -> ledger.Result | None:
    """Render, build and send one claimed email: its result, or None when it never reached a server."""
    payload = claim.payload
    try:
        context = notice_context.revive(payload["context"])
        email = renderer.render(claim.notice, payload["locale"], context)
        sender = settings.sender
        build = partial(build_message, email, from_address=sender.from_address, from_name=sender.from_name,
                        reply_to=sender.reply_to, to=payload["to"], cc=payload["cc"],
                        message_id=claim.message_id, date=store.utcnow())
        data = build(eight_bit=transport.eight_bit)
    except MessageError as exc:
        log.warning("email %s (account %s) cannot be sent: %s", claim.email_id, claim.account, exc)
        return ledger.Result(claim.email_id, claim.fence, "failed", error=str(exc))
    except TemplateError as exc:
        log.error("email %s (account %s) did not render: %s", claim.email_id, claim.account, exc)
        return ledger.Result(claim.email_id, claim.fence, "retry", error=str(exc))
    if summary.stopped:
        return None
    try:
        outcome = await transport.send(sender.from_address, payload["to"] + payload["cc"], data,
                                       seven_bit=partial(build, eight_bit=False))
    except DeliveryError as exc:
        # Raised only before the server could hold the message: safe to queue again as if never claimed.
        summary.stopped = summary.stopped or str(exc)
        return None
    return ledger.Result(claim.email_id, claim.fence, outcome.status, code=outcome.code, reply=outcome.reply,
                         error=outcome.reply if outcome.status != "sent" else "",
                         refused={r: list(v) for r, v in outcome.refused.items()} or None)


def tally(summary: RunSummary, counts: ledger.RecordCounts) -> None:
    """Add what the ledger recorded (fenced-out outcomes are not this worker's to count)."""
    summary.sent += counts.sent
    summary.retried += counts.retry
    summary.failed += counts.failed
    summary.unknown += counts.unknown
