"""Sample scenarios: JSON files shaped like the render context, converted to Python types, checked."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dunning.emails.scenarios import load_scenario, load_scenarios
from dunning.errors import ScenarioError
from dunning.vocabulary import NOTICES

from .conftest import TEMPLATES


def test_shipped_scenarios_cover_every_notice() -> None:
    """Each notice has at least two sample scenarios, and every scenario names a known notice."""
    scenarios = load_scenarios(TEMPLATES)
    notices = [scenario.notice for scenario in scenarios]
    assert set(notices) == set(NOTICES) and all(notices.count(notice) >= 2 for notice in NOTICES)
    assert [s.name for s in scenarios] == sorted(s.name for s in scenarios)


def test_values_become_dates_decimals_and_aware_datetimes() -> None:
    """Dates, amounts and date-times arrive as date, Decimal and aware datetime, never as strings or floats."""
    context = load_scenario(TEMPLATES / "scenarios" / "card_charge_failed--insufficient-funds.json").context
    invoice = context["invoices"][0]
    assert invoice["due_date"] == date(2026, 11, 1) and invoice["outstanding"] == Decimal("1234.50")
    assert context["balance"] == [{"currency": "EUR", "amount": Decimal("1234.50")}]
    retry = context["failure"]["next_retry_at"]
    assert isinstance(retry, datetime) and retry.utcoffset() is not None


def _write(tmp_path: Path, context: dict) -> Path:
    base = json.loads((TEMPLATES / "scenarios" / "past_due--stage-1-card.json").read_text(encoding="utf-8"))
    base["context"].update(context)
    path = tmp_path / "case.json"
    path.write_text(json.dumps(base), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"balance": [{"currency": "EUR", "amount": 12.5}]}, "decimal strings"),
    ({"disable_date": "2026-13-01"}, "month must be in 1..12"),
    ({"failure": {"charge_id": "c", "code": "x", "attempted_at": "2026-11-01T06:00:00", "next_retry_at": None}},
     "no UTC offset"),
])
def test_bad_values_are_reported_with_the_file(tmp_path: Path, change: dict, message: str) -> None:
    """A float amount, an impossible date or a naive date-time is an error naming the file."""
    path = _write(tmp_path, change)
    with pytest.raises(ScenarioError, match=message) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value)


def test_a_context_missing_a_key_is_reported(tmp_path: Path) -> None:
    """Every key of the render context must be present, so previews match real emails."""
    path = _write(tmp_path, {})
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["context"]["timezone"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ScenarioError, match="lacks timezone"):
        load_scenario(path)
