"""Plan → ledger: every planned notice becomes an outbox entry (an email to send, or keys to record)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from dunning import frozen, ledger
from dunning.billing.contract import Account
from dunning.delivery.mime import address_domain, make_message_id
from dunning.links import LinkSigner
from dunning.planning import candidates, notice_context
from dunning.planning.policy import PlannedNotice
from dunning.run.context import RunContext
from dunning.run.stages import OFF, Stages
from dunning.run.summary import RunSummary
from dunning.settings import Settings

__all__ = ["planned_batches", "count_plan", "enqueue_batches", "plan_entries", "outbox_entry"]


def planned_batches(run: RunContext, as_of: datetime, summary: RunSummary, *,
                    found: Callable[[], object] | None = None) -> Iterator[list[ledger.OutboxEntry]]:
    """Every candidate batch planned, its links signed: the outbox entries of each batch that has any, not yet
    written; found is called once there are candidates, before any is loaded (see candidates.iter_batches)."""
    locales, stages = run.renderer.available_locales, run.stages
    stages.lap("other")
    assert run.links is not None, "a run that enqueues signs links"
    # Paused accounts are left out by the candidate query: nothing of theirs is sent or recorded.
    for accounts, planned in candidates.iter_batches(run.engine, as_of, run.settings, locales, include_paused=False,
                                                        found=found):
        stages.lap("plan")
        entries = plan_entries(planned, accounts, run.settings, run.links, summary, now=run.clock.now(),
                               stages=stages)
        stages.lap("enqueue")
        if entries:
            yield entries
    stages.lap("plan")


def enqueue_batches(run: RunContext, batches: Iterable[list[ledger.OutboxEntry]], as_of: datetime) -> None:
    """Put each batch's entries in the outbox."""
    for entries in batches:
        run.progress("planned", sum(entry.status == "send" for entry in entries))
        ledger.enqueue(run.engine, entries, now=run.clock.now(), as_of=as_of)
        run.stages.lap("enqueue")


def count_plan(run: RunContext, as_of: datetime, summary: RunSummary) -> None:
    """Plan every candidate batch and only count what is due (a dry run: nothing signed or written)."""
    for _accounts, planned in candidates.iter_batches(run.engine, as_of, run.settings, run.renderer.available_locales,
                                                      include_paused=False):
        run.progress("planned", sum(notice.status == "send" for notice in count_planned(planned, summary)))


def count_planned(planned: Iterable[PlannedNotice], summary: RunSummary) -> list[PlannedNotice]:
    """Count every notice under its status; returns those the ledger records (not deferred, not paused)."""
    recorded = []
    for notice in planned:
        summary.planned_notice(notice.status)
        if notice.status not in ("deferred", "paused"):
            recorded.append(notice)
    return recorded


def plan_entries(planned: Iterable[PlannedNotice], accounts: Iterable[Account], settings: Settings,
                 links: LinkSigner, summary: RunSummary, *, now: datetime,
                 stages: Stages = OFF) -> list[ledger.OutboxEntry]:
    """Outbox entries for one batch of planned notices; deferred ones are only counted, paused ones left out."""
    by_id = {a.id: a for a in accounts}
    domain = address_domain(settings.sender.from_address)
    entries = [outbox_entry(notice, by_id[notice.account], settings, links, now=now, stages=stages, domain=domain)
               for notice in count_planned(planned, summary)]
    # A batch holds whole accounts, so accounts are counted once across batches.
    summary.unreachable += len({entry.account for entry in entries if entry.status == "suppressed"})
    return entries


def outbox_entry(notice: PlannedNotice, account: Account, settings: Settings, links: LinkSigner, *,
                 now: datetime, stages: Stages = OFF, domain: str | None = None) -> ledger.OutboxEntry:
    """The ledger's record of one planned notice, with everything needed to send it later (links signed at now);
    domain: the sender's ASCII domain, for its Message-ID (found from the settings unless given)."""
    status = notice.status
    if status == "deferred" or status == "paused":
        raise ValueError(f"a {status} notice is never enqueued: {notice.keys}")
    message_id = payload = None
    if status == "send":
        first_key = notice.keys[0]
        expiring = notice.notice == "card_expiring"
        sign = links.update_url if expiring else links.settlement_url
        stages.lap("enqueue")
        url = sign(account=notice.account, payment_method=notice.payment_method, key=first_key, now=now)
        stages.lap("sign")
        context = notice_context.build_context(notice, account, settings, None if expiring else url,
                                               url if expiring else None)
        payload = notice_context.to_json({"to": notice.to, "cc": notice.cc,
                                          "locale": notice.locale, "context": context})
        message_id = make_message_id(first_key, domain or address_domain(settings.sender.from_address))
    return _entry(account=notice.account, payment_method=notice.payment_method,
                  notice=notice.notice, stage=notice.stage, locale=notice.locale, status=status,
                  keys=tuple(notice.keys), message_id=message_id, payload=payload)


_entry = frozen.builder(ledger.OutboxEntry)
