"""A Stripe sync: a full pass over every customer, or the customers that events since the cursor touch.

Records go through `dunning import`'s own validation and upsert (`importer.import_stream`): a record that
breaks the contract is rejected alone, and a customer whose record did not change is left as it is.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import Engine

from dunning.billing import importer
from dunning.errors import RecordError
from dunning.settings import Settings
from dunning.sources.stripe import state
from dunning.sources.stripe.client import StripeSource
from dunning.sources.stripe.mapping import Bundle, account_record, customer_of

__all__ = ["CLOCK_MARGIN", "SyncSummary", "sync", "sync_full", "sync_events", "store_bundles", "describe"]

# A full pass reads events again from a little before it started: the margin covers a clock that differs
# from Stripe's, and a customer changed while the pass was reading it.
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass
class SyncSummary:
    mode: str = "full"
    customers: int = 0
    events: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    requests: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "customers": self.customers, "events": self.events, "imported": self.imported,
                "updated": self.updated, "unchanged": self.unchanged, "rejected": self.rejected,
                "requests": self.requests, "seconds": round(self.seconds, 3)}


Report = Callable[[str], None]
Progress = Callable[[int], None]


def sync(engine: Engine, source: StripeSource, settings: Settings, *, now: datetime, full: bool = False,
         on_error: Report = lambda text: None, on_progress: Progress = lambda done: None) -> SyncSummary:
    """Full when asked, on the first sync, or when the cursor is older than Stripe keeps events; else incremental."""
    started = time.perf_counter()
    cursor = state.read_cursor(engine)
    if full or cursor is None or cursor < (now - state.EVENT_RETENTION).timestamp():
        summary = sync_full(engine, source, settings, now=now, on_error=on_error, on_progress=on_progress)
    else:
        summary = sync_events(engine, source, settings, cursor, now=now, on_error=on_error, on_progress=on_progress)
    summary.requests, summary.seconds = source.requests, time.perf_counter() - started
    return summary


def sync_full(engine: Engine, source: StripeSource, settings: Settings, *, now: datetime,
              on_error: Report, on_progress: Progress) -> SyncSummary:
    """Every customer, then the cursor set to just before the pass began."""
    summary = SyncSummary(mode="full")
    _store_all(engine, source, settings, source.customers(), summary, on_error, on_progress, as_of=now)
    state.write_cursor(engine, int((now - CLOCK_MARGIN).timestamp()))
    return summary


def sync_events(engine: Engine, source: StripeSource, settings: Settings, cursor: int, *, now: datetime,
                on_error: Report, on_progress: Progress) -> SyncSummary:
    """The customers that events not applied yet touch, refetched whole; then those events marked applied."""
    summary = SyncSummary(mode="incremental")
    # Only what is needed of each event is kept: a month of a large account's events is millions of them.
    events = [(event["id"], event["created"], customer_of(event)) for event in source.events_since(cursor)]
    fresh = state.unseen(engine, [event_id for event_id, _created, _customer in events])
    summary.events = len(fresh)
    touched = dict.fromkeys(customer for event_id, _created, customer in events if customer and event_id in fresh)
    customers = (found for found in map(source.customer, touched) if found is not None)
    _store_all(engine, source, settings, customers, summary, on_error, on_progress, as_of=now)
    state.mark_seen(engine, fresh, now)
    state.write_cursor(engine, max([cursor, *(created for _id, created, _customer in events)]))
    return summary


def _store_all(engine: Engine, source: StripeSource, settings: Settings, customers: Iterator[dict[str, Any]],
               summary: SyncSummary, on_error: Report, on_progress: Progress, *, as_of: datetime) -> None:
    batch_size = settings.database.batch_size
    # Requests wait on the network far more than on this process: several customers are read at once.
    with ThreadPoolExecutor(settings.stripe.concurrency, thread_name_prefix="stripe") as pool:
        while chunk := list(islice(customers, batch_size)):
            store_bundles(engine, list(pool.map(source.bundle, chunk)), settings, summary, on_error, as_of=as_of)
            summary.customers += len(chunk)
            on_progress(summary.customers)


def store_bundles(engine: Engine, bundles: Iterable[Bundle], settings: Settings, summary: SyncSummary,
                  on_error: Report, *, as_of: datetime | None = None) -> None:
    """Map each bundle to its record and store the records as `dunning import` stores lines, the balance
    changes they bring dated as_of (default: now)."""
    records = [account_record(bundle, settings.stripe, settings.i18n.default_locale) for bundle in bundles]
    lines = b"".join(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n" for record in records)
    counts = importer.import_stream(engine, io.BytesIO(lines), batch_size=settings.database.batch_size,
                                    on_error=lambda error: on_error(describe(error, records)), as_of=as_of)
    summary.imported += counts.imported
    summary.updated += counts.updated
    summary.unchanged += counts.unchanged
    summary.rejected += counts.rejected


_CHILD = re.compile(r"^(payment_methods|subscriptions|invoices|charges)\[(\d+)\]")


def describe(error: RecordError, records: list[dict[str, Any]]) -> str:
    """The rejection named by Stripe ids: `customer cus_1: invoice in_9: invoices[0].due_date: reason`."""
    record = records[error.line - 1] if error.line and error.line <= len(records) else {}
    where = f"customer {record.get('id') or error.account or '?'}"
    match = _CHILD.match(error.field or "")
    if match:
        children = record.get(match.group(1)) or []
        index = int(match.group(2))
        if index < len(children) and children[index].get("id"):
            where += f": {match.group(1).rstrip('s').replace('_', ' ')} {children[index]['id']}"
    return f"{where}: {error.field}: {error.reason}" if error.field else f"{where}: {error.reason}"
