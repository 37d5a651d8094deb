"""Which accounts may be due for a notice, found by index in SQL, then planned batch by batch in Python.

A run over a million accounts where nothing is due reads no account at all: the candidate query touches
only index ranges around as_of (owed invoices by due date, failed charges by attempt time, non-payment
cancellations by date). The ranges are a superset of what the policy can act on, whatever the account's
time zone (local dates lie within a day of the UTC date); the policy makes the exact decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Engine,
    Select,
    bindparam,
    column,
    false,
    insert,
    select,
    table,
    true,
    union,
)

from dunning import ledger, store
from dunning.billing import loader
from dunning.billing.contract import Account
from dunning.bounces import suppressions
from dunning.planning.policy import PlannedNotice, plan
from dunning.settings import Settings

__all__ = ["SLACK", "candidate_query", "candidate_batches", "iter_batches", "iter_plan"]

SLACK = timedelta(days=2)  # more than the widest gap between a local date and the UTC date, plus DST


def candidate_query(as_of: datetime, settings: Settings) -> CompoundSelect:
    """Ids of the accounts that may be due for a notice at as_of (distinct, in no particular order)."""
    utc_date = as_of.astimezone(UTC).date()
    return union(_past_due(utc_date, settings), _failed_charges(as_of, settings),
                 *_cancellations(as_of, settings))


def _past_due(utc_date: date, settings: Settings) -> Select:
    policy = settings.past_due
    # The episode start is an owed due date with start < local date <= start + max_days_after_due and
    # start + days_after_due[0] <= local date; the local date is the UTC date ± 1.
    earliest = utc_date - SLACK - timedelta(days=policy.max_days_after_due)
    latest = utc_date + timedelta(days=1 - max(policy.days_after_due[0], 1))
    invoices = store.invoices
    return select(invoices.c.account_id).where(
        invoices.c.owed == true(), invoices.c.due_date >= earliest, invoices.c.due_date <= latest)


def _failed_charges(as_of: datetime, settings: Settings) -> Select:
    oldest = as_of - timedelta(days=settings.card_charge_failed.max_age_days) - SLACK
    charges = store.charges
    return select(charges.c.account_id).where(
        charges.c.outcome == "failed", charges.c.attempted_at >= oldest, charges.c.attempted_at <= as_of)


def _cancellations(as_of: datetime, settings: Settings) -> list[Select]:
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


def candidate_batches(conn: Connection, as_of: datetime, settings: Settings) -> Iterator[list[str]]:
    """Candidate account ids in batches of database.batch_size, in a stable (bytewise) order.

    The ids are gathered once into a temporary table and read back a page at a time, each in a short
    transaction: a read left open while batches are planned would stall SQLite's WAL checkpoints (every
    other worker then reads through an ever longer log) and pin PostgreSQL's snapshot.
    """
    collation = ' COLLATE "C"' if conn.dialect.name == "postgresql" else ""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_CANDIDATES.name}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {_CANDIDATES.name} (account_id TEXT{collation} PRIMARY KEY)")
    conn.execute(insert(_CANDIDATES).from_select(["account_id"], candidate_query(as_of, settings)))
    conn.commit()
    page = (select(_CANDIDATES.c.account_id).where(_CANDIDATES.c.account_id > bindparam("after"))
            .order_by(_CANDIDATES.c.account_id).limit(settings.database.batch_size))
    after = ""
    try:
        while ids := list(conn.execute(page, {"after": after}).scalars()):
            yield ids
            after = ids[-1]
    finally:
        conn.rollback()
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_CANDIDATES.name}")
        conn.commit()


_CANDIDATES = table("dunning_candidates", column("account_id"))


def iter_batches(engine: Engine, as_of: datetime, settings: Settings,
                 locales: frozenset[str]) -> Iterator[tuple[list[Account], list[PlannedNotice]]]:
    """Each batch of candidate accounts with its plan at as_of, in account order."""
    with engine.connect() as conn:
        for ids in candidate_batches(conn, as_of, settings):
            accounts = loader.load_accounts(conn, ids)
            handled = ledger.handled_keys(conn, ids)
            suppressed = suppressions.suppressed_among(conn, [a for acc in accounts for a in (acc.email, *acc.cc)])
            conn.rollback()  # end the batch's read before the caller writes (see candidate_batches)
            yield accounts, plan(accounts, handled, as_of, settings, locales=locales, suppressed=suppressed)


def iter_plan(engine: Engine, as_of: datetime, settings: Settings,
              locales: frozenset[str]) -> Iterator[list[PlannedNotice]]:
    """The plan at as_of, one list per batch of candidate accounts, in account order."""
    for _accounts, planned in iter_batches(engine, as_of, settings, locales):
        yield planned
