"""The policy's sections of the settings: send window, each notice's stages, and what a segment may override."""

from __future__ import annotations

from datetime import time
from itertools import pairwise

from pydantic import Field, field_validator, model_validator

from dunning.settings.section import Section

__all__ = ["PolicySettings", "CardChargeFailedSettings", "PastDueSettings", "ServiceCancelledSettings",
           "DeletionSettings", "PendingDeletionSettings", "CardExpiringSettings", "BalanceSettledSettings",
           "SegmentSettings"]


def _strictly_increasing(values: list[int], *, decreasing: bool = False) -> list[int]:
    if not values:
        raise ValueError("must list at least one stage")
    if any(v < 0 for v in values):
        raise ValueError("days must not be negative")
    pairs = pairwise(values)
    if not all((a > b) if decreasing else (a < b) for a, b in pairs):
        raise ValueError("stages must be strictly " + ("decreasing" if decreasing else "increasing"))
    return values


class PolicySettings(Section):
    send_window: str = "08:00-20:00"

    @field_validator("send_window")
    @classmethod
    def _parse_window(cls, value: str) -> str:
        start, sep, end = value.partition("-")
        try:
            if not sep:
                raise ValueError
            first, last = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
        except ValueError:
            raise ValueError(f'not a window "HH:MM-HH:MM": {value!r}') from None
        if first >= last:
            raise ValueError("the window must start before it ends")
        return value

    @property
    def window(self) -> tuple[time, time]:
        start, _, end = self.send_window.partition("-")
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


class CardChargeFailedSettings(Section):
    max_age_days: int = Field(3, gt=0)


class PastDueSettings(Section):
    days_after_due: list[int] = [1, 7, 14]
    max_days_after_due: int = Field(60, gt=0)
    disable_after_days: int = Field(30, gt=0)

    @field_validator("days_after_due")
    @classmethod
    def _stages(cls, value: list[int]) -> list[int]:
        return _strictly_increasing(value)

    @model_validator(mode="after")
    def _last_stage_in_range(self) -> PastDueSettings:
        if self.days_after_due[-1] > self.max_days_after_due:
            raise ValueError("the last stage falls after max_days_after_due")
        return self


class ServiceCancelledSettings(Section):
    max_age_days: int = Field(7, gt=0)


class DeletionSettings(Section):
    days_after_cancel: int = Field(90, gt=0)


class PendingDeletionSettings(Section):
    days_before_deletion: list[int] = [30, 7, 1]

    @field_validator("days_before_deletion")
    @classmethod
    def _stages(cls, value: list[int]) -> list[int]:
        return _strictly_increasing(value, decreasing=True)


class CardExpiringSettings(Section):
    days_before: list[int] = [30, 7]

    @field_validator("days_before")
    @classmethod
    def _stages(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError("days must be at least 1 (the card works through the last day of its month)")
        return _strictly_increasing(value, decreasing=True)


class BalanceSettledSettings(Section):
    within_days: int = Field(30, gt=0)


class _SegmentPastDue(Section):
    days_after_due: list[int] | None = None
    disable_after_days: int | None = None


class _SegmentPendingDeletion(Section):
    days_before_deletion: list[int] | None = None


class _SegmentCardExpiring(Section):
    days_before: list[int] | None = None


class _SegmentPolicy(Section):
    send_window: str | None = None


class SegmentSettings(Section):
    """One `[segments.<name>]` section: the keys a segment may override; any other key is an error."""

    past_due: _SegmentPastDue = _SegmentPastDue()
    pending_deletion: _SegmentPendingDeletion = _SegmentPendingDeletion()
    card_expiring: _SegmentCardExpiring = _SegmentCardExpiring()
    policy: _SegmentPolicy = _SegmentPolicy()
