"""Sample render contexts (templates/emails/scenarios/*.json) for previews, snapshot tests and lint.

Each file holds one scenario: `{"notice": ..., "description": ..., "context": {...}}`, the context
shaped like the render context, with JSON types: dates (`*_date`) as "YYYY-MM-DD", date-times
(`*_at`) as RFC 3339 with an offset, amounts (`total`, `outstanding`, `amount`) as decimal strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dunning.errors import ScenarioError

__all__ = ["SCENARIOS_DIR", "CONTEXT_KEYS", "DECIMAL_KEYS", "Scenario", "load_scenarios", "load_scenario"]

SCENARIOS_DIR = "scenarios"
CONTEXT_KEYS = ("notice", "stage", "final_stage", "account", "payment_method", "subscriptions", "invoices",
                "balance", "failure", "shared_card", "disable_date", "deletion_date", "days_left",
                "settlement_url", "support_url", "branding", "timezone")
DECIMAL_KEYS = frozenset({"total", "outstanding", "amount"})



@dataclass(frozen=True, slots=True)
class Scenario:
    """One sample email: its name (the file's stem), its notice and its render context."""

    name: str
    notice: str
    context: dict[str, Any]
    description: str = ""


def load_scenarios(templates_dir: Path) -> list[Scenario]:
    """Every scenario under templates_dir/scenarios, sorted by name."""
    folder = Path(templates_dir) / SCENARIOS_DIR
    return [load_scenario(path) for path in sorted(folder.glob("*.json"))]


def load_scenario(path: Path) -> Scenario:
    """One scenario file, with dates, date-times and decimals converted to Python types."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("context"), dict):
        raise ScenarioError(f'{path}: expected {{"notice": ..., "context": {{...}}}}')
    context = data["context"]
    missing = [key for key in CONTEXT_KEYS if key not in context]
    if missing:
        raise ScenarioError(f"{path}: context lacks {', '.join(missing)}")
    notice = data.get("notice", context["notice"])
    if notice != context["notice"]:
        raise ScenarioError(f"{path}: notice {notice!r} but context.notice {context['notice']!r}")
    try:
        converted = _convert(context, "")
    except (ValueError, InvalidOperation, TypeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return Scenario(path.stem, notice, converted, str(data.get("description", "")))


def _convert(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _convert(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(item, key) for item in value]
    if value is None or not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return value
    if key in DECIMAL_KEYS:
        if isinstance(value, float):
            raise TypeError(f"{key}: write amounts as decimal strings, not {value!r}")
        return Decimal(str(value))
    if key.endswith("_date"):
        return date.fromisoformat(str(value))
    if key.endswith("_at"):
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(f"{key}: {value!r} has no UTC offset")
        return moment
    return value
