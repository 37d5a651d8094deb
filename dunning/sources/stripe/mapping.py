"""Stripe objects (as plain dicts) → one billing-state record per customer. Pure: no I/O, no clock.

The contract validates what this builds: a customer without an email comes out without one, and the
import's validation rejects it, naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dunning.settings import StripeSettings
from dunning.sources.stripe.currencies import major_units

__all__ = ["Bundle", "KNOWN_DECLINES", "SUBSCRIPTION_STATUS", "INVOICE_STATUS", "CANCEL_REASON", "account_record",
           "customer_of", "invoice_method_id", "ref"]

Obj = Mapping[str, Any]

SUBSCRIPTION_STATUS = {"active": "active", "trialing": "active", "past_due": "past_due", "incomplete": "past_due",
                       "unpaid": "disabled", "paused": "disabled", "canceled": "cancelled",
                       "incomplete_expired": "cancelled"}
INVOICE_STATUS = {"open": "open", "paid": "paid", "void": "void", "uncollectible": "void"}
CANCEL_REASON = {"payment_failed": "non_payment", "cancellation_requested": "customer_request"}
# Decline codes the policy and the emails tell apart; any other stays the charge's failure_code.
KNOWN_DECLINES = frozenset({"insufficient_funds", "do_not_honor", "expired_card", "processing_error"})


@dataclass(frozen=True, slots=True)
class Bundle:
    """One customer and everything of theirs the mapping reads, as the API returned it."""

    customer: Obj
    cards: Sequence[Obj] = ()  # PaymentMethods of type card
    subscriptions: Sequence[Obj] = ()
    invoices: Sequence[Obj] = ()
    charges: Sequence[Obj] = ()
    products: Mapping[str, str] = field(default_factory=dict)  # product id → name


def ref(value: Any) -> str | None:
    """The id of an expandable field, whether Stripe gave the id or the expanded object."""
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return value if isinstance(value, str) and value else None


def customer_of(event: Obj) -> str | None:
    """The customer an event concerns: the object itself when it is one, else the object's `customer`."""
    obj = (event.get("data") or {}).get("object") or {}
    if obj.get("object") == "customer":
        return ref(obj.get("id"))
    return ref(obj.get("customer"))


def invoice_method_id(customer_id: str) -> str:
    """The payment method of type invoice that stands for a customer's send_invoice subscriptions."""
    return f"{customer_id}.invoice"


def account_record(bundle: Bundle, settings: StripeSettings, default_locale: str) -> dict[str, Any]:
    """The contract's record for one customer."""
    record = _account(bundle.customer, settings, default_locale)
    subscriptions = [s for s in bundle.subscriptions if s.get("status") in SUBSCRIPTION_STATUS]
    invoices = [i for i in bundle.invoices if i.get("status") in INVOICE_STATUS and _subscription_of(i)]
    zone = _zone(record["timezone"])
    record["payment_methods"] = _payment_methods(bundle, subscriptions)
    record["subscriptions"] = sorted((_subscription(s, bundle.customer, bundle.products) for s in subscriptions),
                                     key=_by_id)
    record["invoices"] = sorted((_invoice(i, zone) for i in invoices), key=_by_id)
    record["charges"] = _charges(bundle.charges, invoices)
    return record


def _account(customer: Obj, settings: StripeSettings, default_locale: str) -> dict[str, Any]:
    """The account's own fields, from the customer and its metadata."""
    metadata, keys = customer.get("metadata") or {}, settings.metadata
    record: dict[str, Any] = {
        "id": customer["id"],
        "name": customer.get("name") or customer.get("description") or customer.get("email") or "",
        "locale": (customer.get("preferred_locales") or [default_locale])[0],
        "timezone": metadata.get(keys.timezone) or settings.default_timezone,
    }
    if customer.get("email"):
        record["email"] = customer["email"]
    cc = [address.strip() for address in str(metadata.get(keys.cc) or "").split(",") if address.strip()]
    if cc:
        record["cc"] = cc
    for key, name in ((keys.segment, "segment"), (keys.paused_until, "dunning_paused_until")):
        if metadata.get(key):
            record[name] = metadata[key]
    return record


def _by_id(item: Mapping[str, Any]) -> str:
    return str(item["id"])


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")  # the record keeps the bad name: the contract rejects it, naming the field


def _moment(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def _local_date(timestamp: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(timestamp, zone).date().isoformat()


def _card(method_id: str, card: Obj) -> dict[str, Any]:
    out: dict[str, Any] = {"id": method_id, "type": "card"}
    for name in ("brand", "last4", "exp_month", "exp_year"):
        if card.get(name) is not None:
            out[name] = card[name]
    return out


def _payment_methods(bundle: Bundle, subscriptions: Sequence[Obj]) -> list[dict[str, Any]]:
    """The customer's cards; cards only a charge still names (detached since); one invoice method if needed."""
    methods = {pm["id"]: _card(pm["id"], pm.get("card") or {}) for pm in bundle.cards}
    for charge in bundle.charges:
        method = _charge_method(charge)
        card = (charge.get("payment_method_details") or {}).get("card")
        if method and method not in methods and card:
            methods[method] = _card(method, card)
    if any(s.get("collection_method") == "send_invoice" for s in subscriptions):
        method = invoice_method_id(bundle.customer["id"])
        methods[method] = {"id": method, "type": "invoice"}
    return sorted(methods.values(), key=_by_id)


def _subscription(sub: Obj, customer: Obj, products: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": sub["id"], "name": _product_name(sub, products),
                           "status": SUBSCRIPTION_STATUS[sub["status"]]}
    method = _subscription_method(sub, customer)
    if method:
        out["payment_method"] = method
    if out["status"] == "cancelled":
        ended = sub.get("canceled_at") or sub.get("ended_at")
        if ended:
            out["cancelled_at"] = _moment(ended)
        reason = CANCEL_REASON.get((sub.get("cancellation_details") or {}).get("reason") or "")
        if reason:
            out["cancel_reason"] = reason
    return out


def _product_name(sub: Obj, products: Mapping[str, str]) -> str:
    items = (sub.get("items") or {}).get("data") or []
    if not items:
        return str(sub["id"])
    price = items[0].get("price") or items[0].get("plan") or {}
    product = price.get("product")
    if isinstance(product, Mapping) and product.get("name"):
        return str(product["name"])
    product_id = ref(product)
    return products.get(product_id or "") or price.get("nickname") or product_id or str(sub["id"])


def _subscription_method(sub: Obj, customer: Obj) -> str | None:
    if sub.get("collection_method") == "send_invoice":
        return invoice_method_id(customer["id"])
    settings = customer.get("invoice_settings") or {}
    return (ref(sub.get("default_payment_method")) or ref(settings.get("default_payment_method"))
            or ref(customer.get("default_source")))


def _subscription_of(invoice: Obj) -> str | None:
    """The invoice's subscription: `parent.subscription_details` in newer API versions, `subscription` before."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return ref(details.get("subscription")) or ref(invoice.get("subscription"))


def _invoice(invoice: Obj, zone: ZoneInfo) -> dict[str, Any]:
    currency = str(invoice["currency"])
    finalized = (invoice.get("status_transitions") or {}).get("finalized_at") or invoice["created"]
    issued = _local_date(finalized, zone)
    due = issued
    if invoice.get("collection_method") == "send_invoice" and invoice.get("due_date"):
        due = _local_date(invoice["due_date"], zone)
    return {"id": invoice["id"], "subscription": _subscription_of(invoice), "currency": currency.upper(),
            "total": major_units(invoice.get("total") or 0, currency),
            "amount_paid": major_units(invoice.get("amount_paid") or 0, currency),
            "issued_date": issued, "due_date": due, "status": INVOICE_STATUS[invoice["status"]],
            **({"payment_url": invoice["hosted_invoice_url"]} if invoice.get("hosted_invoice_url") else {})}


def _charge_method(charge: Obj) -> str | None:
    return ref(charge.get("payment_method")) or ref(charge.get("source"))


def _invoice_by_intent(invoices: Sequence[Obj]) -> dict[str, Obj]:
    """PaymentIntent id → its invoice: `payment_intent` before 2025's API, the `payments` list after."""
    found: dict[str, Obj] = {}
    for invoice in invoices:
        intents = [ref(invoice.get("payment_intent"))]
        for payment in (invoice.get("payments") or {}).get("data") or []:
            intents.append(ref((payment.get("payment") or {}).get("payment_intent")))
        for intent in intents:
            if intent:
                found[intent] = invoice
    return found


def _charges(charges: Sequence[Obj], invoices: Sequence[Obj]) -> list[dict[str, Any]]:
    """Each invoice's settled payment attempts (pending ones left out); the latest failure carries the retry."""
    by_intent, by_id = _invoice_by_intent(invoices), {i["id"]: i for i in invoices}
    attempts: list[tuple[Obj, Obj]] = []
    for charge in charges:
        invoice = by_id.get(ref(charge.get("invoice")) or "") or by_intent.get(ref(charge.get("payment_intent")) or "")
        if invoice and charge.get("status") in ("succeeded", "failed") and _charge_method(charge):
            attempts.append((charge, invoice))
    latest_failure: dict[str, Obj] = {}
    for charge, invoice in sorted(attempts, key=lambda pair: (pair[0]["created"], pair[0]["id"])):
        if charge["status"] == "failed":
            latest_failure[invoice["id"]] = charge
    return sorted((_charge(c, i, latest_failure.get(i["id"]) is c) for c, i in attempts), key=_by_id)


def _charge(charge: Obj, invoice: Obj, latest_failure: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": charge["id"], "invoice": invoice["id"], "payment_method": _charge_method(charge),
                           "attempted_at": _moment(charge["created"]),
                           "outcome": "succeeded" if charge["status"] == "succeeded" else "failed"}
    if out["outcome"] == "failed":
        decline = charge.get("decline_code") or ((charge.get("outcome") or {}).get("reason"))
        code = decline if decline in KNOWN_DECLINES else charge.get("failure_code")
        if code:
            out["failure_code"] = code
        retry = invoice.get("next_payment_attempt")
        if latest_failure and retry and invoice.get("status") == "open":
            out["next_retry_at"] = _moment(retry)
    return out
