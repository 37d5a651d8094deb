"""What the policy decides for one notice: the planned notice every later stage of the line reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from dunning.frozen import builder
from dunning.vocabulary import PlanStatus

__all__ = ["PlannedNotice", "planned_notice"]


@dataclass(frozen=True, slots=True)
class PlannedNotice:
    """One email (or one recorded skip or supersession) that a run would handle."""

    account: str
    notice: str
    stage: int | None
    payment_method: str
    status: PlanStatus
    amounts: dict[str, Decimal]  # balance per currency, sorted by currency
    invoices: tuple[str, ...]
    subscriptions: tuple[str, ...]
    locale: str  # BCP 47 form of the catalog used
    catalog: str  # the same locale in Babel form, as the renderer takes it
    requested_locale: str
    locale_fallback: bool
    to: tuple[str, ...]
    cc: tuple[str, ...]
    keys: tuple[str, ...]
    local_date: date
    trigger_charge: str | None
    episode_start: date | None
    disable_date: date | None
    deletion_date: date | None
    days_left: int | None
    final_stage: bool  # the last stage of its sequence (past_due: the email shows the disable date)
    shared_card: bool  # several subscriptions share this payment method
    why: str


planned_notice = builder(PlannedNotice)
"""What PlannedNotice(...) builds from every field's value in the order of the fields, without the frozen class's
__setattr__ (the policy builds two or more per account)."""
