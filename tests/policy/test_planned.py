"""planned_notice builds what PlannedNotice(...) builds, and the notice stays frozen."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import date
from decimal import Decimal

import pytest

from dunning.planning.planned import PlannedNotice, planned_notice

VALUES = {"account": "acc_1", "notice": "past_due", "stage": 2, "payment_method": "pm_1", "status": "send",
          "amounts": {"EUR": Decimal("12.50")}, "invoices": ("in_1",), "subscriptions": ("sub_1",),
          "locale": "fr-FR", "catalog": "fr", "requested_locale": "fr-FR", "locale_fallback": False,
          "to": ("a@example.com",), "cc": (), "keys": ("past_due:acc_1:pm_1:2026-12-01:2",),
          "local_date": date(2026, 12, 7), "trigger_charge": "ch_1", "episode_start": date(2026, 12, 1),
          "disable_date": None, "deletion_date": None, "days_left": None, "final_stage": False,
          "shared_card": True, "why": "stage 2"}


def test_every_field_set_in_order() -> None:
    names = [field.name for field in dataclasses.fields(PlannedNotice)]
    built = planned_notice(*(VALUES[name] for name in names))
    assert built == PlannedNotice(**VALUES)  # type: ignore[arg-type]
    assert [getattr(built, name) for name in names] == [VALUES[name] for name in names]


def test_a_missing_value_is_refused_and_the_notice_stays_frozen() -> None:
    names = [field.name for field in dataclasses.fields(PlannedNotice)]
    with pytest.raises(TypeError):  # as PlannedNotice(...) refuses it
        planned_notice(*(VALUES[name] for name in names[:-1]))
    built = planned_notice(*(VALUES[name] for name in names))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.status = "skipped"  # type: ignore[misc]


def test_a_built_notice_is_a_planned_notice_in_every_way() -> None:
    """Its class, equality, copies and replacements are those of a notice made by PlannedNotice(...)."""
    names = [field.name for field in dataclasses.fields(PlannedNotice)]
    built = planned_notice(*(VALUES[name] for name in names))
    made = PlannedNotice(**VALUES)  # type: ignore[arg-type]
    assert type(built) is PlannedNotice and isinstance(built, PlannedNotice)
    assert repr(built) == repr(made)
    assert dataclasses.replace(built, status="skipped") == dataclasses.replace(made, status="skipped")
    assert pickle.loads(pickle.dumps(built)) == made
