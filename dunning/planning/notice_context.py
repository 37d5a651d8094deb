"""A planned notice and its account → the render context the email templates receive."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from dunning.billing.contract import Account, PaymentMethod
from dunning.planning.policy import PlannedNotice
from dunning.settings import BrandingSettings, Settings

__all__ = ["build_context", "to_json", "revive"]


def build_context(planned: PlannedNotice, account: Account, settings: Settings, settlement_url: str | None,
                  update_url: str | None = None) -> dict[str, Any]:
    """The render context of interfaces.md for one planned notice of this account.

    card_expiring gets update_url (the payment-method update page) and no settlement_url; every other
    notice the reverse."""
    subs = {s.id: s for s in account.subscriptions}
    method = next(pm for pm in account.payment_methods if pm.id == planned.payment_method)
    amounts = planned.amounts
    return {
        "notice": planned.notice,
        "stage": planned.stage,
        "final_stage": planned.final_stage,
        "account": {"id": account.id, "name": account.name, "email": account.email},
        "payment_method": {"id": method.id, "type": method.type, "brand": method.brand, "last4": method.last4,
                           "exp_month": method.exp_month, "exp_year": method.exp_year},
        "subscriptions": _by_name([{"id": i, "name": subs[i].name} for i in planned.subscriptions]),
        "invoices": _invoices(planned, account, subs),
        "balance": [{"currency": c, "amount": amounts[c]} for c in (sorted(amounts) if len(amounts) > 1
                                                                     else amounts)],
        "failure": _failure(planned, account),
        "shared_card": planned.shared_card,
        "disable_date": planned.disable_date,
        "deletion_date": planned.deletion_date,
        "days_left": planned.days_left,
        "card_end_date": _valid_until(method) if planned.notice == "card_expiring" else None,
        "settlement_url": settlement_url,
        "update_url": update_url,
        "support_url": settings.branding.support_url,
        "branding": dict(_branding(settings.branding)),
        "timezone": account.timezone,
    }


_BRANDINGS: dict[int, tuple[BrandingSettings, dict[str, Any]]] = {}


def _branding(branding: BrandingSettings) -> dict[str, Any]:
    """The branding section as a dict: made once per section rather than once per email. Found by identity:
    hashing a settings section hashes every field, which costs more than the dump."""
    held = _BRANDINGS.get(id(branding))
    if held is None or held[0] is not branding:
        if len(_BRANDINGS) >= 8:
            _BRANDINGS.clear()
        held = _BRANDINGS[id(branding)] = (branding, branding.model_dump())
    return held[1]


def _valid_until(method: PaymentMethod) -> date | None:
    """The last day a card works: the last day of its expiry month."""
    if method.exp_year is None or method.exp_month is None:
        return None
    first_after = date(method.exp_year + method.exp_month // 12, method.exp_month % 12 + 1, 1)
    return first_after - timedelta(days=1)


def _by_name(subscriptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(subscriptions) > 1:  # most notices name one subscription
        subscriptions.sort(key=lambda s: (s["name"], s["id"]))
    return subscriptions


def _invoices(planned: PlannedNotice, account: Account, subs: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = planned.invoices
    if not wanted:
        return []
    chosen = [i for i in account.invoices if i.id in wanted]
    if len(chosen) > 1:
        chosen.sort(key=lambda i: (i.due_date, i.id))
    return [{"id": i.id, "subscription": i.subscription, "subscription_name": subs[i.subscription].name,
             "currency": i.currency, "total": i.total, "outstanding": i.outstanding,
             "issued_date": i.issued_date, "due_date": i.due_date} for i in chosen]


def _failure(planned: PlannedNotice, account: Account) -> dict[str, Any] | None:
    charge = next((c for c in account.charges if c.id == planned.trigger_charge), None)
    if charge is None:
        return None
    return {"charge_id": charge.id, "code": charge.failure_code or "card_declined",
            "attempted_at": charge.attempted_at, "next_retry_at": charge.next_retry_at}


def to_json(payload: dict[str, Any]) -> str:
    """JSON text for the outbox, with dates, date-times (ISO 8601) and decimals as strings (see revive)."""
    return orjson.dumps(payload, default=_plain).decode()


def _plain(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"the outbox cannot store {type(value).__name__}")


def revive(context: dict[str, Any]) -> dict[str, Any]:
    """The stored context with its dates, date-times and decimals made Python values again."""
    for key in ("disable_date", "deletion_date", "card_end_date"):
        if context.get(key) is not None:
            context[key] = date.fromisoformat(context[key])
    for invoice in context["invoices"]:
        invoice["total"], invoice["outstanding"] = Decimal(invoice["total"]), Decimal(invoice["outstanding"])
        invoice["issued_date"] = date.fromisoformat(invoice["issued_date"])
        invoice["due_date"] = date.fromisoformat(invoice["due_date"])
    for line in context["balance"]:
        line["amount"] = Decimal(line["amount"])
    failure = context["failure"]
    if failure:
        failure["attempted_at"] = datetime.fromisoformat(failure["attempted_at"])
        if failure["next_retry_at"]:
            failure["next_retry_at"] = datetime.fromisoformat(failure["next_retry_at"])
    return context
