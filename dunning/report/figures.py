"""Recovery figures, purely from rows: emails sent, unique clicks, and the settlements each email is credited with.

A settlement counts once, for the last email sent to its group before it, when that email was sent at most
window_days before it; balance_settled confirmations ask for nothing and are never credited.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

__all__ = ["EmailRow", "Settlement", "Tally", "Figures", "compute"]

Group = tuple[str, str | None]  # account id, payment method id
UNCREDITED = frozenset({"balance_settled"})


@dataclass(frozen=True, slots=True)
class EmailRow:
    """One sent email, at the moment its notice was decided for."""

    id: int
    account: str
    payment_method: str | None
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

    def tallies(self, email: EmailRow) -> Iterator[Tally]:
        """The tallies an email counts in (created on first use)."""
        yield self.overall
        yield self.by_notice.setdefault((email.notice, email.stage), Tally())
        yield self.by_locale.setdefault(email.locale, Tally())
        yield self.by_segment.setdefault(email.segment, Tally())
        monday = email.at.date() - timedelta(days=email.at.weekday())
        yield self.by_week.setdefault(monday, Tally())


def compute(emails: Iterable[EmailRow], clicked: set[int], settlements: list[Settlement], *, window_days: int,
            start: datetime | None = None, before: datetime | None = None) -> Figures:
    """The figures of the emails sent from `start` until `before`; the others only take the credit for the
    settlements that followed them."""
    figures = Figures(window_days)
    pending: dict[Group, list[int]] = {}
    for index, settlement in enumerate(settlements):
        pending.setdefault((settlement.account, settlement.payment_method), []).append(index)
    credited: dict[int, EmailRow] = {}
    for email in emails:
        if _within(email, start, before):
            for tally in figures.tallies(email):
                tally.sent += 1
                tally.clicked += email.id in clicked
        if email.notice not in UNCREDITED:
            for index in pending.get((email.account, email.payment_method), ()):
                best = credited.get(index)
                if email.at < settlements[index].at and (best is None or email.at >= best.at):
                    credited[index] = email
    _credit(figures, settlements, credited, start, before)
    return figures


def _within(email: EmailRow, start: datetime | None, before: datetime | None) -> bool:
    return (start is None or email.at >= start) and (before is None or email.at < before)


def _credit(figures: Figures, settlements: list[Settlement], credited: dict[int, EmailRow],
            start: datetime | None, before: datetime | None) -> None:
    window = timedelta(days=figures.window_days)
    for index, email in credited.items():
        settlement = settlements[index]
        waited = settlement.at - email.at
        if waited > window or not _within(email, start, before):
            continue
        for tally in figures.tallies(email):
            tally.settled += 1
            tally.days.append(waited.total_seconds() / 86400)
            for currency, amount in settlement.recovered.items():
                tally.recovered[currency] = tally.recovered.get(currency, Decimal(0)) + amount
