"""Ledger → SMTP → ledger: claim a batch, render, build and send each email, record what became of it."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import uvloop

from dunning import ledger
from dunning.bounces.verp import verp_address
from dunning.delivery.transport import Outcome, SmtpTransport
from dunning.errors import (
    DeliveryError,
    EmailTooLarge,
    ExitCode,
    LeaseLost,
    MessageError,
    RenderTooSlow,
    SettingsError,
    TemplateError,
)
from dunning.run.context import RunContext
from dunning.run.events import log_result
from dunning.run.flight import FlightLog, flight_folder
from dunning.run.journal import Journal, journal_for
from dunning.run.lease import Fenced, Lease
from dunning.run.recipients import addressees, settle, unaddressed
from dunning.run.render_ahead import Prepared, prepare, prepared_ahead, template_order
from dunning.run.stages import Stages
from dunning.run.summary import RunSummary
from dunning.settings import Settings

__all__ = ["deliver", "run_loop", "envelope_sender"]

log = logging.getLogger("dunning.run")

IDLE_POLL_SECONDS = 0.05


def run_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run the delivery loop on uvloop: its event loop costs far less per SMTP round trip."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coroutine)


async def deliver(run: RunContext, summary: RunSummary, *, more_coming: Callable[[], bool] = lambda: False,
                  keep_going: Callable[[], bool] = lambda: True) -> None:
    """Claim batches and send them until the queue is empty (and no more is coming) or delivery must stop;
    keep_going is asked before each batch (False: stop, the batch in hand sent and recorded)."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    folder = flight_folder(run.engine)
    flight = FlightLog(folder, worker) if folder is not None else None
    try:
        await _deliver_batches(run, summary, worker, flight, more_coming, keep_going)
    except BaseException:
        if flight is not None:  # kept for the replay once this worker's lease has run out
            flight.close(remove=False)
        raise
    if flight is not None:
        flight.close(remove=True)


async def _deliver_batches(run: RunContext, summary: RunSummary, worker: str, flight: FlightLog | None,
                           more_coming: Callable[[], bool], keep_going: Callable[[], bool]) -> None:
    engine, clock, delivery, stages = run.engine, run.clock, run.settings.delivery, run.stages

    def recorded(counts: ledger.RecordCounts) -> None:
        summary.record(counts)
        run.progress("sent", counts.sent)

    async with run.open_transport() as transport:
        while summary.stopped is None and keep_going():
            stages.lap("smtp")
            lease = Lease(delivery.lease_seconds)
            started = lease.started()
            claims = ledger.claim(engine, worker=worker, limit=delivery.batch_size, now=clock.now(),
                                  lease_seconds=delivery.lease_seconds)
            stages.lap("claim")
            if not claims:
                if more_coming():
                    await clock.sleep(IDLE_POLL_SECONDS)
                    continue
                break
            lease.renewed(started)
            claims.sort(key=template_order)
            journal = journal_for(engine, clock, delivery, recorded, flight, connections=run.settings.smtp.concurrency)
            journal.stages = stages
            outcomes: list[ledger.Result | None] = [None] * len(claims)
            try:
                async with keep_leased(run, claims, outcomes, lease, summary):
                    await send_batch(run, claims, transport, summary, journal, lease, outcomes)
                stages.lap("smtp")
            except BaseException:
                journal.close(complete=False)
                raise
            journal.close()
            ledger.unclaim(engine, [c for c, r in zip(claims, outcomes, strict=True) if r is None], now=clock.now())
            stages.lap("record")


async def send_batch(run: RunContext, claims: list[ledger.Claim], transport: SmtpTransport, summary: RunSummary,
                     journal: Journal | None, lease: Lease, results: list[ledger.Result | None]) -> None:
    """send_claim for each claim, in order, a few at a time: twice as many as there are connections; each
    result goes into results (None: it never reached a server).

    A send builds its message before it waits for a connection; were the whole batch started at once,
    every message of the batch would be held in memory while four connections work. The emails are
    rendered and built a chunk at a time ahead of the sends (render_ahead).
    """
    pending, stages = prepared_ahead(run, claims, lambda: transport.eight_bit), run.stages

    async def lane() -> None:
        for n, claim, ready in pending:
            result = results[n] = await send_claim(run, claim, transport, summary, journal, lease, ready)
            if result is not None:
                log_result(claim, result)
                if journal is not None:
                    stages.lap("smtp")
                    journal.finished(result)
                    stages.lap("record")

    # A lane that fails stops the others (a task group cancels them) before the transport closes.
    try:
        async with asyncio.TaskGroup() as lanes:
            for _ in range(min(len(claims), 2 * run.settings.smtp.concurrency)):
                lanes.create_task(lane())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


@asynccontextmanager
async def keep_leased(run: RunContext, claims: list[ledger.Claim], results: list[ledger.Result | None],
                      lease: Lease, summary: RunSummary) -> AsyncIterator[None]:
    """Renew the batch's lease while it is being sent, so no other worker takes it over as abandoned; once an
    email still to be sent is found taken over, the lease is lost and the batch sends nothing more. A renewal
    that fails (a full disk) stops the batch's sends as a failed send does, and is raised."""
    lease_seconds = run.settings.delivery.lease_seconds

    async def heartbeat() -> None:
        while lease.lost is None:
            await run.clock.sleep(lease_seconds / 3)
            started, now = lease.started(), run.clock.now()
            unsent = [c for c, r in zip(claims, results, strict=True) if r is None]
            held = ledger.extend_leases(run.engine, unsent, now=now, lease_seconds=lease_seconds)
            # Emails with an outcome are held too until it is written; their rows may have it already.
            ledger.extend_leases(run.engine, [c for c, r in zip(claims, results, strict=True) if r is not None],
                                 now=now, lease_seconds=lease_seconds)
            if held < len(unsent):
                lease.lose(f"{len(unsent) - held} of the batch's emails still to be sent were taken over by "
                           "another process (this one stalled past its lease)")
                summary.stop(f"lease lost: {lease.lost}", code=ExitCode.PENDING)
                log.error("delivery stopped: lease lost: %s", lease.lost)
            else:
                lease.renewed(started)

    try:
        async with asyncio.TaskGroup() as beating:  # a heartbeat that fails cancels the block, then is raised
            beat = beating.create_task(heartbeat())
            try:
                yield
            finally:
                beat.cancel()
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def send_claim(run: RunContext, claim: ledger.Claim, transport: SmtpTransport, summary: RunSummary,
                     journal: Journal | None, lease: Lease, ready: Prepared | None = None) -> ledger.Result | None:
    """Send one claimed email, rendered and built now unless ready is given: its result, or None when it
    never reached a server."""
    settings, stages = run.settings, run.stages
    try:
        if ready is None:
            stages.lap("smtp")
            ready = prepare(run, claim, transport.eight_bit)
        email, data = ready.email, ready.data
        if isinstance(email, TemplateError):
            raise email
        if _too_large(run, summary, claim, len(email.html) + len(email.text)):
            return None
        if isinstance(data, MessageError):
            raise data
        assert data is not None and ready.build is not None   # built whenever it rendered and was not too large
        if _too_large(run, summary, claim, len(data)):
            return None
    except EmailTooLarge as exc:
        _refused(summary, claim, f"is too large: {exc}")
        return None
    except RenderTooSlow as exc:
        _refused(summary, claim, f"takes too long to render: {exc}")
        return None
    except MessageError as exc:
        log.warning("email %s (account %s) cannot be sent: %s", claim.email_id, claim.account, exc)
        return ledger.Result(claim.email_id, claim.fence, "failed", error=str(exc))
    except TemplateError as exc:
        log.error("email %s (account %s) did not render: %s", claim.email_id, claim.account, exc)
        return ledger.Result(claim.email_id, claim.fence, "retry", error=str(exc))
    if summary.stopped:
        return None
    to, cc = ready.to, ready.cc
    earlier_refused = claim.refused
    recipients = addressees(to, cc, claim.delivered, earlier_refused)
    if not recipients:  # every recipient has it, or refused it for good
        status = unaddressed(to, claim.delivered)
        return ledger.Result(claim.email_id, claim.fence, status, refused=earlier_refused or None,
                             delivered=claim.delivered, error="" if status == "sent" else "every recipient refused it")
    try:
        outcome = await transport.send(envelope_sender(settings, claim.email_id), recipients, data,
                                       seven_bit=partial(ready.build, eight_bit=False),
                                       before_data=partial(_marked_and_fenced, stages, lease, journal, claim))
    except DeliveryError as exc:
        # Raised only before the server could hold the message: safe to queue again as if never claimed.
        summary.stop(str(exc))
        return None
    except LeaseLost as exc:
        # The session was dropped with DATA open, nothing handed over: a retry, if this process still
        # holds the row (an email taken over has its fence moved on, and this outcome is not written).
        summary.stop(str(exc), code=ExitCode.PENDING)
        return ledger.Result(claim.email_id, claim.fence, "retry", error=f"not sent: {exc}")
    settled = settle(outcome, to, claim.delivered, earlier_refused)
    summary.recipients_refused += sum(1 for code, _ in outcome.refused.values() if 500 <= code < 600)
    return ledger.Result(claim.email_id, claim.fence, settled.status, code=outcome.code, reply=outcome.reply,
                         error=_error(settled.status, outcome, to), refused=settled.refused or None,
                         delivered=settled.delivered, primary_delivered=settled.primary_delivered)


def envelope_sender(settings: Settings, email_id: int) -> str:
    """MAIL FROM for one email: its own signed bounce address (VERP) when bounces.return_path is set."""
    return_path = settings.bounces.return_path
    if return_path is None:
        return settings.sender.from_address
    keys = settings.links.key_list
    if not keys:
        raise SettingsError("bounces.return_path is set but no key signs bounce addresses: set DUNNING_LINKS__KEYS")
    return verp_address(return_path, email_id, keys[0])


def _too_large(run: RunContext, summary: RunSummary, claim: ledger.Claim, size: int) -> bool:
    """Whether the email passes delivery.max_message_bytes: then its template is wrong, the run stops (exit
    65) and the email stays queued for when the template is fixed."""
    limit = run.settings.delivery.max_message_bytes
    if size <= limit:
        return False
    _refused(summary, claim, f"is {size} bytes, more than delivery.max_message_bytes ({limit}): its template "
             "makes it too large")
    return True


def _refused(summary: RunSummary, claim: ledger.Claim, why: str) -> None:
    """Stop the run (exit 65) for an email its template makes too large or too slow; the email stays queued."""
    reason = f"email {claim.email_id} ({claim.notice}, {claim.locale or 'default locale'}) {why}; it stays queued"
    log.error("%s", reason)
    summary.stop(reason, code=ExitCode.DATA)


def _marked_and_fenced(stages: Stages, lease: Lease, journal: Journal | None, claim: ledger.Claim) -> Fenced:
    """Asked for as the envelope goes out: the email's mark (its CPU counted as recording), then, awaited
    once DATA is open, the lease's check."""
    stages.lap("smtp")
    marked = journal.data_goes_out(claim) if journal is not None else None
    stages.lap("record")
    return Fenced(lease, marked)


def _error(status: str, outcome: Outcome, to: list[str]) -> str:
    """Why an email is not sent yet: the final reply, or the refusal of a recipient still waiting."""
    if status == "sent":
        return ""
    if outcome.status == "sent":
        waiting = [f"{r}: {code} {text}" for r, (code, text) in outcome.refused.items()]
        return "recipients refused: " + "; ".join(waiting) if waiting else f"not accepted for {', '.join(to)}"
    return outcome.reply

