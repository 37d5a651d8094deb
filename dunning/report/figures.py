"""Recovery figures, purely from rows: emails sent and clicked per slice, and the settlements they are credited.

A settlement counts once, for the last email sent to its group before it (the query finds it), when that
email was sent in the period and at most window_days before it; balance_settled confirmations ask for
nothing and are never credited.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

__all__ = ["UNCREDITED", "Count", "EmailRow", "Settlement", "Tally", "Figures", "compute"]

UNCREDITED = frozenset({"balance_settled"})
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Count:
    """The emails of one slice and UTC day: how many were sent, how many of them clicked."""

    notice: str
    stage: int | None
    locale: str
    segment: str | None
    day: date
    sent: int
    clicked: int


@dataclass(frozen=True, slots=True)
class EmailRow:
    """One sent email, at the moment its notice was decided for."""

    id: int
    notice: str
    stage: int | None
    locale: str
    segment: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Settlement:
    """A group's balance going to nothing while it has a live subscription, and what it owed just before."""

    account: str
    payment_method: str
    at: datetime
    recovered: dict[str, Decimal]


@dataclass
class Tally:
    """The figures of one slice: emails sent and clicked, settlements credited, money recovered, days taken."""

    sent: int = 0
    clicked: int = 0
    settled: int = 0
    recovered: dict[str, Decimal] = field(default_factory=dict)
    days: list[float] = field(default_factory=list)

    @property
    def median_days(self) -> float | None:
        """Median days from email to settlement, to the hundredth; None with no settlement."""
        return round(statistics.median(self.days), 2) if self.days else None


@dataclass
class Figures:
    """Every slice of the report."""

    window_days: int
    overall: Tally = field(default_factory=Tally)
    by_notice: dict[tuple[str, int | None], Tally] = field(default_factory=dict)
    by_locale: dict[str, Tally] = field(default_factory=dict)
    by_segment: dict[str | None, Tally] = field(default_factory=dict)
    by_week: dict[date, Tally] = field(default_factory=dict)

    def tallies(self, notice: str, stage: int | None, locale: str, segment: str | None, day: date) -> Iterator[Tally]:
        """The tallies an email of this slice and day counts in (created on first use)."""
        yield self.overall
        yield _tally(self.by_notice, (notice, stage))
        yield _tally(self.by_locale, locale)
        yield _tally(self.by_segment, segment)
        yield _tally(self.by_week, day - timedelta(days=day.weekday()))


def _tally(tallies: dict[K, Tally], key: K) -> Tally:
    """The tally of a key, created on first use (setdefault would build a Tally for every call)."""
    tally = tallies.get(key)
    if tally is None:
        tally = tallies[key] = Tally()
    return tally


def compute(counts: Iterable[Count], settlements: Iterable[tuple[Settlement, EmailRow | None]], *,
            window_days: int, start: datetime | None = None, before: datetime | None = None) -> Figures:
    """The figures of the emails sent from `start` until `before` (the counts are of those already)."""
    figures = Figures(window_days)
    for count in counts:
        for tally in figures.tallies(count.notice, count.stage, count.locale, count.segment, count.day):
            tally.sent += count.sent
            tally.clicked += count.clicked
    window = timedelta(days=window_days)
    for settlement, email in settlements:
        if email is None or not _within(email.at, start, before) or settlement.at - email.at > window:
            continue
        waited = (settlement.at - email.at).total_seconds() / 86400
        for tally in figures.tallies(email.notice, email.stage, email.locale, email.segment, email.at.date()):
            tally.settled += 1
            tally.days.append(waited)
            for currency, amount in settlement.recovered.items():
                tally.recovered[currency] = tally.recovered.get(currency, Decimal(0)) + amount
    return figures


def _within(moment: datetime, start: datetime | None, before: datetime | None) -> bool:
    return (start is None or moment >= start) and (before is None or moment < before)
