"""Which accounts may be due for a notice, found by index in SQL, then planned batch by batch in Python.

A run over a million accounts where nothing is due reads no account at all: the candidate query touches
only index ranges around as_of (owed invoices by due date, failed charges by attempt time, non-payment
cancellations by date, cards by expiry month, paused accounts by pause end, the ledger's recent dunning
keys by notice and as_of). Each billing-table index holds the account id and whatever else its range
reads, so those ranges read index pages alone, never a table row (store's _V7_REPLACED). The
ranges are a superset of what the policy can act on, whatever the account's time zone (local dates lie
within a day of the UTC date) and whatever its segment (each segment's stages get their own ranges); the
policy makes the exact decision.

Two ranges would otherwise select accounts that are long done, so they leave out what the ledger already
answered, by primary key: an expiring card whose highest possible stage is held, a dunning key whose
balance_settled is held. A card is still selected for the day or two when its next stage is due in some
time zones and not yet in its own. A run (not a plan) leaves paused accounts out: nothing of theirs may be
sent or recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache

from sqlalchemy import (
    Column,
    CompoundSelect,
    Connection,
    Engine,
    MetaData,
    Select,
    Table,
    bindparam,
    exists,
    false,
    insert,
    literal,
    select,
    true,
    union,
)

from dunning import ledger, store
from dunning.billing import loader
from dunning.billing.contract import Account
from dunning.bounces import suppressions
from dunning.planning.policy import PlannedNotice, plan
from dunning.settings import Settings
from dunning.store import Backend
from dunning.vocabulary import BALANCE_SETTLED_PREFIX, DUNNING_NOTICES, card_expiring_key_parts

__all__ = ["SLACK", "candidate_query", "candidate_batches", "iter_batches", "iter_plan"]

log = logging.getLogger(__name__)

SLACK = timedelta(days=2)  # more than the widest gap between a local date and the UTC date, plus DST


def candidate_query(as_of: datetime, settings: Settings, *,
                    include_paused: bool = True) -> Select[str] | CompoundSelect[str]:
    """Ids of the accounts that may be due for a notice at as_of (distinct, in no particular order)."""
    utc_date = as_of.astimezone(UTC).date()
    variants = _variants(settings)
    selects = {str(query.compile(compile_kwargs={"literal_binds": True})): query for variant in variants
               for query in (_past_due(utc_date, variant), *_cancellations(as_of, variant),
                             *_expiring_cards(utc_date, variant))}
    found = union(*selects.values(), _failed_charges(as_of, settings), *_recent_dunning(as_of, settings))
    if include_paused:
        return found
    ids = found.subquery()
    accounts = store.accounts
    paused = select(accounts.c.id).where(accounts.c.dunning_paused_until > as_of)
    return select(ids.c.account_id).where(ids.c.account_id.not_in(paused))


def _variants(settings: Settings) -> list[Settings]:
    """The settings and every segment's: candidate ranges cover each one's stages."""
    return [settings, *(settings.for_segment(name) for name in sorted(settings.segments))]


def _past_due(utc_date: date, settings: Settings) -> Select[str]:
    policy = settings.past_due
    # The episode start is an owed due date with start < local date <= start + max_days_after_due and
    # start + days_after_due[0] <= local date; the local date is the UTC date ± 1.
    earliest = utc_date - SLACK - timedelta(days=policy.max_days_after_due)
    latest = utc_date + timedelta(days=1 - max(policy.days_after_due[0], 1))
    invoices = store.invoices
    return select(invoices.c.account_id).where(
        invoices.c.owed == true(), invoices.c.due_date >= earliest, invoices.c.due_date <= latest)


def _failed_charges(as_of: datetime, settings: Settings) -> Select[str]:
    oldest = as_of - timedelta(days=settings.card_charge_failed.max_age_days) - SLACK
    charges = store.charges
    return select(charges.c.account_id).where(
        charges.c.outcome == "failed", charges.c.attempted_at >= oldest, charges.c.attempted_at <= as_of)


def _cancellations(as_of: datetime, settings: Settings) -> list[Select[str]]:
    """service_cancelled for recent ones; pending_deletion from its first stage to the deletion date."""
    keep = timedelta(days=settings.deletion.days_after_cancel)
    first_stage = timedelta(days=settings.pending_deletion.days_before_deletion[0])
    recent = (as_of - timedelta(days=settings.service_cancelled.max_age_days) - SLACK, as_of)
    deleting = (as_of - keep - SLACK, min(as_of, as_of - keep + first_stage + SLACK))
    subs = store.subscriptions
    # Two single-range selects rather than one OR, so each is an index range scan on both databases.
    return [select(subs.c.account_id).where(subs.c.cancel_reason == "non_payment",
                                            subs.c.cancelled_at >= low, subs.c.cancelled_at <= high,
                                            subs.c.data_deleted == false())
            for low, high in (recent, deleting)]


def _expiring_cards(utc_date: date, settings: Settings) -> list[Select[str]]:
    """Cards whose expiry month may have a card_expiring stage due, unless that stage's key is held."""
    stages = settings.card_expiring.days_before
    latest = utc_date + SLACK  # the latest local date any account can have
    methods, notices = store.payment_methods, store.notices
    selects: list[Select[str]] = []
    for month_start in _month_starts(utc_date - SLACK - timedelta(days=31), latest + timedelta(days=stages[0])):
        stops = _next_month(month_start)  # the card works through the day before
        if not (utc_date - SLACK < stops <= latest + timedelta(days=stages[0])):
            continue
        stage = max(k for k, days in enumerate(stages, 1) if stops - timedelta(days=days) <= latest)
        before, between, after = card_expiring_key_parts(month_start.year, month_start.month, stage)
        key = literal(before) + methods.c.account_id + between + methods.c.id + after
        selects.append(select(methods.c.account_id).where(
            methods.c.expiry_month == f"{month_start:%Y-%m}", ~exists().where(notices.c.key == key)))
    return selects


def _month_starts(first: date, last: date) -> Iterable[date]:
    month = first.replace(day=1)
    while month <= last:
        yield month
        month = _next_month(month)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _recent_dunning(as_of: datetime, settings: Settings) -> list[Select[str]]:
    """Accounts with a dunning email sent within balance_settled.within_days whose confirmation is not held."""
    notices, emails, answers = store.notices, store.emails, store.notices.alias("answers")
    oldest = as_of - timedelta(days=settings.balance_settled.within_days)
    return [select(notices.c.account_id).where(
                notices.c.notice == notice, notices.c.as_of >= oldest, notices.c.as_of <= as_of,
                exists().where(emails.c.id == notices.c.email_id, emails.c.status == "sent"),
                ~exists().where(answers.c.key == literal(BALANCE_SETTLED_PREFIX) + notices.c.key))
            for notice in DUNNING_NOTICES]  # one equality each: an index range scan on both databases


def candidate_batches(conn: Connection, as_of: datetime, settings: Settings, *,
                      include_paused: bool = True) -> Iterator[list[str]]:
    """Candidate account ids in batches of database.batch_size, in a stable (bytewise) order.

    The ids are gathered once into a temporary table and read back a page at a time, each in a short
    transaction: a read left open while batches are planned would stall SQLite's WAL checkpoints (every
    other worker then reads through an ever longer log) and pin PostgreSQL's snapshot.
    """
    candidates = _candidates_table(store.backend_of(conn))
    candidates.drop(conn, checkfirst=True)
    candidates.create(conn)
    conn.execute(insert(candidates).from_select(["account_id"],
                                                 candidate_query(as_of, settings, include_paused=include_paused)))
    conn.commit()
    page = (select(candidates.c.account_id).where(candidates.c.account_id > bindparam("after"))
            .order_by(candidates.c.account_id).limit(settings.database.batch_size))
    after = ""
    try:
        while ids := list(conn.execute(page, {"after": after}).scalars()):
            yield ids
            after = ids[-1]
    finally:
        conn.rollback()
        candidates.drop(conn, checkfirst=True)
        conn.commit()


@cache
def _candidates_table(backend: Backend) -> Table:
    """The temporary table of a run's candidate ids, in the bytewise order batches are read in."""
    return Table("dunning_candidates", MetaData(), Column("account_id", backend.bytewise_text(), primary_key=True),
                 prefixes=["TEMPORARY"])


def iter_batches(engine: Engine, as_of: datetime, settings: Settings, locales: frozenset[str], *,
                 include_paused: bool = True, found: Callable[[], object] | None = None,
                 ) -> Iterator[tuple[list[Account], list[PlannedNotice]]]:
    """Each batch of candidate accounts with its plan at as_of, in account order; found is called once the
    first candidates are known, before anything of them is loaded (never when there are none)."""
    warned: set[str] = set()
    with engine.connect() as conn:
        for ids in candidate_batches(conn, as_of, settings, include_paused=include_paused):
            if found is not None:
                found()
                found = None
            accounts = loader.load_accounts(conn, ids)
            history = ledger.key_history(conn, ids)
            suppressed = suppressions.suppressed_among(conn, [a for acc in accounts for a in (acc.email, *acc.cc)])
            conn.rollback()  # end the batch's read before the caller writes (see candidate_batches)
            _warn_unknown_segments(accounts, settings, warned)
            yield accounts, plan(accounts, history.handled, as_of, settings, locales=locales, sent=history.sent,
                                 suppressed=suppressed)


def _warn_unknown_segments(accounts: list[Account], settings: Settings, warned: set[str]) -> None:
    for account in accounts:
        name = account.segment
        if name is not None and name not in warned and not settings.knows_segment(name):
            warned.add(name)
            log.warning("segment %r (account %s and maybe others) has no [segments.%s] section in the "
                        "settings; the defaults apply", name, account.id, name)


def iter_plan(engine: Engine, as_of: datetime, settings: Settings,
              locales: frozenset[str]) -> Iterator[list[PlannedNotice]]:
    """The plan at as_of, one list per batch of candidate accounts, in account order."""
    for _accounts, planned in iter_batches(engine, as_of, settings, locales):
        yield planned
