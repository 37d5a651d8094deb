"""The report over a period: rows read from the store, figures computed, as the JSON dict."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine

from dunning.report import query
from dunning.report.as_json import report_dict
from dunning.report.figures import compute

__all__ = ["build_report"]


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """No cycle collection while the report is built, switched back on after it.

    It allocates a few objects per settlement and keeps most of them to the end: each collector pass
    walks all of them again, which took more time than reading the rows."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_report(engine: Engine, *, window_days: int, start: date | None = None,
                 end: date | None = None) -> dict[str, Any]:
    """The report of the emails sent from `start` through `end` (UTC days, both included; None: unbounded)."""
    since = datetime.combine(start, time(), UTC) if start else None
    before = datetime.combine(end + timedelta(days=1), time(), UTC) if end else None
    with engine.connect() as conn, _without_cycle_collection():
        figures = compute(query.counts(conn, start=since, before=before), query.settlements(conn),
                          window_days=window_days, start=since, before=before)
    period = {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None}
    return report_dict(figures, period=period)
