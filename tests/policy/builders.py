"""Small builders of billing-state lines (contract dicts) for the policy tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from dunning.billing.contract import Account
from dunning.planning.policy import PlannedNotice, plan
from dunning.settings import Settings

LOCALES = frozenset({"en", "fr", "nl", "sv", "de", "ar", "pt"})


def at(text: str) -> datetime:
    """An aware datetime from RFC 3339 text."""
    return datetime.fromisoformat(text)


def card(id: str = "pm_1", expires: str = "2027-03") -> dict:
    """A visa card that works through the last day of the month `expires` ("YYYY-MM")."""
    year, month = (int(part) for part in expires.split("-"))
    return {"id": id, "type": "card", "brand": "visa", "last4": "4242", "exp_month": month, "exp_year": year}


def bank(id: str = "pm_2") -> dict:
    return {"id": id, "type": "invoice"}


def sub(id: str = "sub_1", pm: str = "pm_1", status: str = "active", **extra: Any) -> dict:
    return {"id": id, "name": f"Plan {id}", "payment_method": pm, "status": status, **extra}


def cancelled(id: str = "sub_1", at: str = "2026-11-18T15:00:00Z", reason: str = "non_payment",
              pm: str = "pm_1", **extra: Any) -> dict:
    return sub(id, pm, "cancelled", cancelled_at=at, cancel_reason=reason, **extra)


def invoice(id: str = "inv_1", sub: str = "sub_1", due: str = "2026-11-01", total: str = "100.00",
            currency: str = "EUR", paid: str = "0", status: str = "open") -> dict:
    return {"id": id, "subscription": sub, "currency": currency, "total": total, "amount_paid": paid,
            "issued_date": "2026-09-01", "due_date": due, "status": status}


def charge(id: str = "ch_1", inv: str = "inv_1", at: str = "2026-11-01T06:00:00Z", outcome: str = "failed",
           pm: str = "pm_1", code: str = "insufficient_funds") -> dict:
    data = {"id": id, "invoice": inv, "payment_method": pm, "attempted_at": at, "outcome": outcome}
    if outcome == "failed":
        data["failure_code"] = code
        data["next_retry_at"] = "2026-11-25T06:00:00Z"
    return data


def account(id: str = "acct_1", *, tz: str = "Europe/Paris", locale: str = "fr-FR",
            methods: Iterable[dict] | None = None, subs: Iterable[dict] | None = None,
            invoices: Iterable[dict] | None = None, charges: Iterable[dict] = (),
            cc: Iterable[str] = (), paused_until: str | None = None, segment: str | None = None) -> dict:
    """One contract line; by default a card, one active subscription and one open invoice due 2026-11-01."""
    data = {"id": id, "name": "Contoso <SARL> & Co", "email": f"billing@{id.replace('_', '-')}.example", "cc": list(cc),
            "locale": locale, "timezone": tz,
            "payment_methods": list(methods if methods is not None else [card()]),
            "subscriptions": list(subs if subs is not None else [sub()]),
            "invoices": list(invoices if invoices is not None else [invoice()]),
            "charges": list(charges)}
    if paused_until is not None:
        data["dunning_paused_until"] = paused_until
    if segment is not None:
        data["segment"] = segment
    return data


def model(data: dict) -> Account:
    """The validated contract model of one line."""
    return Account.model_validate(data)


def plan_of(data: dict | list[dict], as_of: str | datetime, handled: Iterable[str] = (),
            settings: Settings | None = None, locales: frozenset[str] = LOCALES,
            sent: dict[str, str] | None = None) -> list[PlannedNotice]:
    """The plan of these lines; `sent` maps dunning keys whose email was sent to the as_of they were recorded at."""
    lines = data if isinstance(data, list) else [data]
    moment = at(as_of) if isinstance(as_of, str) else as_of
    history: dict[str, dict[str, datetime]] = {}
    for key, when in (sent or {}).items():
        history.setdefault(key.split(":")[1], {})[key] = at(when)
    return plan([model(line) for line in lines], set(handled) | set(sent or {}), moment, settings or Settings(),
                locales=locales, sent=history)


def lines(planned: Iterable[PlannedNotice]) -> list[str]:
    """Each entry as "status key key…": compact enough for a table of expectations."""
    return [" ".join((p.status, *p.keys)) for p in planned]


def write_jsonl(path: Path, data: Iterable[dict]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in data), encoding="utf-8")
    return path


def scoped(data: dict, tag: str) -> dict:
    """The line with every child id suffixed by tag (ids are unique across the whole store)."""
    rename = {child["id"]: f"{child['id']}{tag}" for field in ("payment_methods", "subscriptions", "invoices",
                                                                "charges") for child in data[field]}
    refs = ("id", "payment_method", "subscription", "invoice")
    return {**data, **{field: [{k: rename[v] if k in refs else v for k, v in child.items()} for child in data[field]]
                       for field in ("payment_methods", "subscriptions", "invoices", "charges")}}
