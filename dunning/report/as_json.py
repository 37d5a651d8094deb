"""The report as JSON, with the stable keys docs/report.md documents."""

from __future__ import annotations

from typing import Any

from dunning.report.figures import Figures, Tally

__all__ = ["tally_dict", "report_dict"]


def tally_dict(tally: Tally, **labels: Any) -> dict[str, Any]:
    """One slice: its labels, then sent, clicked, settled, recovered per currency and median days to settle."""
    return {**labels, "sent": tally.sent, "clicked": tally.clicked, "settled": tally.settled,
            "recovered": {currency: str(amount) for currency, amount in sorted(tally.recovered.items())},
            "median_days_to_settle": tally.median_days}


def _notice_order(item: tuple[tuple[str, int | None], Tally]) -> tuple[str, int]:
    (notice, stage), _ = item
    return notice, stage or 0


def report_dict(figures: Figures, *, period: dict[str, str | None]) -> dict[str, Any]:
    """The whole report: the window, the period, the overall figures and every breakdown, each in a fixed order."""
    return {
        "window_days": figures.window_days,
        "period": period,
        "overall": tally_dict(figures.overall),
        "by_notice": [tally_dict(t, notice=notice, stage=stage)
                      for (notice, stage), t in sorted(figures.by_notice.items(), key=_notice_order)],
        "by_locale": [tally_dict(t, locale=locale) for locale, t in sorted(figures.by_locale.items())],
        "by_segment": [tally_dict(t, segment=segment)
                       for segment, t in sorted(figures.by_segment.items(), key=lambda i: i[0] or "")],
        "by_week": [tally_dict(t, week=week.isoformat()) for week, t in sorted(figures.by_week.items())],
    }
