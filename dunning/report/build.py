"""The report over a period: rows read from the store, figures computed, as the JSON dict."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine

from dunning.report import query
from dunning.report.as_json import report_dict
from dunning.report.figures import compute

__all__ = ["build_report"]


def build_report(engine: Engine, *, window_days: int, start: date | None = None,
                 end: date | None = None) -> dict[str, Any]:
    """The report of the emails sent from `start` through `end` (UTC days, both included; None: unbounded)."""
    since = datetime.combine(start, time(), UTC) if start else None
    before = datetime.combine(end + timedelta(days=1), time(), UTC) if end else None
    with engine.connect() as conn:
        figures = compute(query.counts(conn, start=since, before=before), query.settlements(conn),
                          window_days=window_days, start=since, before=before)
    period = {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None}
    return report_dict(figures, period=period)
