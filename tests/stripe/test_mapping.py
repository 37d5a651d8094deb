"""The mapping, field by field, on objects shaped as Stripe's API reference documents them (recorded/),
for what localstripe lacks: cancellation_details, decline codes, send_invoice, newer invoice shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dunning import store
from dunning.billing.contract import Account
from dunning.settings import Settings, StripeSettings
from dunning.sources.stripe.currencies import major_units
from dunning.sources.stripe.mapping import Bundle, account_record, customer_of
from dunning.sources.stripe.sync import SyncSummary, store_bundles

RECORDED = json.loads((Path(__file__).parent / "recorded" / "bundle.json").read_text())


def _bundle(**changes: Any) -> Bundle:
    return Bundle(**{**RECORDED, **changes})


def _record(bundle: Bundle | None = None, **settings: Any) -> dict[str, Any]:
    return account_record(bundle or _bundle(), StripeSettings(**settings), "en")


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def test_the_record_passes_the_contract() -> None:
    """Everything the mapping builds from a full customer validates as an account line."""
    Account.model_validate(_record())


def test_account_fields_come_from_the_customer_and_its_metadata() -> None:
    """name falls back to description; locale from preferred_locales; the rest from metadata keys."""
    record = _record()
    assert {k: v for k, v in record.items() if not isinstance(v, list) or k == "cc"} == {
        "id": "cus_R1", "name": "Société Générale d'Exemple", "email": "compta@exemple.fr", "locale": "fr-FR",
        "timezone": "Europe/Paris", "segment": "enterprise", "dunning_paused_until": "2026-12-24T00:00:00Z",
        "cc": ["dg@exemple.fr", "cfo@exemple.fr"]}


def test_defaults_apply_where_the_customer_says_nothing() -> None:
    """No preferred locale, no metadata: the default locale and default_timezone; the name from the email."""
    customer = {"id": "cus_2", "email": "a@example.com", "metadata": {}}
    record = _record(Bundle(customer=customer), default_timezone="America/New_York")
    assert (record["name"], record["locale"], record["timezone"]) == ("a@example.com", "en", "America/New_York")
    assert "segment" not in record and "cc" not in record


def test_metadata_keys_are_settings() -> None:
    """Other metadata keys can be named in [stripe.metadata]."""
    customer = {"id": "cus_3", "email": "a@example.com", "metadata": {"tz": "Asia/Tokyo"}}
    assert _record(Bundle(customer=customer), metadata={"timezone": "tz"})["timezone"] == "Asia/Tokyo"


def test_a_customer_without_an_email_has_none_in_its_record() -> None:
    """The contract, not the mapping, rejects it (and names the field)."""
    assert "email" not in _record(Bundle(customer={"id": "cus_4", "name": "X", "metadata": {}}))


def test_payment_methods_are_cards_charged_cards_and_one_invoice_method() -> None:
    """Attached cards; a card only a charge still names (from payment_method_details); type invoice for send_invoice."""
    assert _record()["payment_methods"] == [
        {"id": "cus_R1.invoice", "type": "invoice"},
        {"id": "pm_default", "type": "card", "brand": "mastercard", "last4": "4444", "exp_month": 3, "exp_year": 2027},
        {"id": "pm_old", "type": "card", "brand": "amex", "last4": "0005", "exp_month": 1, "exp_year": 2026},
        {"id": "pm_sub", "type": "card", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2026}]


def test_subscriptions_map_status_method_name_and_cancellation() -> None:
    """Status by the table; the subscription's card, else the customer's default; the product's name;
    cancelled_at from canceled_at else ended_at; cancel_reason from cancellation_details."""
    subs = _by_id(_record()["subscriptions"])
    assert subs["sub_card"] == {"id": "sub_card", "name": "Pro", "status": "past_due", "payment_method": "pm_sub"}
    assert subs["sub_default"] == {"id": "sub_default", "name": "Stockage", "status": "active",
                                   "payment_method": "pm_default"}
    assert subs["sub_transfer"]["payment_method"] == "cus_R1.invoice"
    assert subs["sub_failed"] == {"id": "sub_failed", "name": "Pro", "status": "cancelled", "payment_method": "pm_sub",
                                  "cancelled_at": "2026-11-01T00:00:00Z", "cancel_reason": "non_payment"}
    assert (subs["sub_asked"]["cancelled_at"], subs["sub_asked"]["cancel_reason"]) == (
        "2026-11-02T00:00:00Z", "customer_request")
    assert (subs["sub_unpaid"]["status"], subs["sub_unpaid"]["name"]) == ("disabled", "sub_unpaid")


@pytest.mark.parametrize(("stripe_status", "status"), [
    ("active", "active"), ("trialing", "active"), ("past_due", "past_due"), ("incomplete", "past_due"),
    ("unpaid", "disabled"), ("canceled", "cancelled"), ("incomplete_expired", "cancelled")])
def test_subscription_status_table(stripe_status: str, status: str) -> None:
    """Each Stripe status becomes the contract's."""
    sub = {"id": "sub_1", "status": stripe_status, "canceled_at": 1793491200, "items": {"data": []}}
    assert _record(_bundle(subscriptions=[sub], invoices=[], charges=[]))["subscriptions"][0]["status"] == status


def test_invoices_convert_minor_units_dates_and_status() -> None:
    """Zero- and three-decimal currencies; local dates of finalization; send_invoice keeps its due date;
    uncollectible is void; drafts and invoices of no subscription are left out."""
    invoices = _by_id(_record()["invoices"])
    assert sorted(invoices) == ["in_eur", "in_jpy", "in_lost", "in_transfer"]
    # finalized at 23:30 UTC on the 18th: the 19th in Paris
    assert invoices["in_eur"] == {"id": "in_eur", "subscription": "sub_card", "currency": "EUR", "total": "1234.50",
                                  "amount_paid": "0.00", "issued_date": "2026-11-19", "due_date": "2026-11-19",
                                  "status": "open"}
    assert (invoices["in_jpy"]["total"], invoices["in_jpy"]["subscription"]) == ("1500", "sub_default")
    # Stripe's own payment page, where a settlement link lands; an invoice without one has no payment_url.
    assert invoices["in_jpy"]["payment_url"] == "https://invoice.stripe.com/i/acct_1/test_jpy"
    assert (invoices["in_lost"]["total"], invoices["in_lost"]["status"]) == ("5.120", "void")
    transfer = invoices["in_transfer"]
    assert (transfer["total"], transfer["amount_paid"], transfer["issued_date"], transfer["due_date"]) == (
        "9900.00", "2500.00", "2026-11-18", "2026-12-19")


def test_charges_are_the_invoices_settled_attempts() -> None:
    """Linked by invoice or by PaymentIntent; pending and invoice-less ones left out; a known decline code
    wins over card_declined; the retry goes on the invoice's latest failure only."""
    charges = _by_id(_record()["charges"])
    assert sorted(charges) == ["ch_1", "ch_2", "ch_4"]
    assert charges["ch_1"] == {"id": "ch_1", "invoice": "in_eur", "payment_method": "pm_sub",
                               "attempted_at": "2026-11-19T00:01:40Z", "outcome": "failed",
                               "failure_code": "insufficient_funds"}
    assert charges["ch_2"] == {"id": "ch_2", "invoice": "in_eur", "payment_method": "pm_sub",
                               "attempted_at": "2026-11-20T00:01:40Z", "outcome": "failed",
                               "failure_code": "card_declined", "next_retry_at": "2026-11-22T00:00:00Z"}
    assert (charges["ch_4"]["outcome"], charges["ch_4"]["payment_method"]) == ("succeeded", "pm_old")


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    (1500, "jpy", "1500"), (2500, "eur", "25.00"), (5120, "kwd", "5.120"), (150000, "isk", "1500.00"),
    (1000, "krw", "1000"), (7, "usd", "0.07")])
def test_minor_units_follow_stripes_lists(amount: int, currency: str, shown: str) -> None:
    """Zero-decimal currencies are whole; three-decimal ones in thousandths; the rest in hundredths."""
    assert major_units(amount, currency) == shown


@pytest.mark.parametrize(("event", "customer"), [
    ({"data": {"object": {"object": "customer", "id": "cus_1"}}}, "cus_1"),
    ({"data": {"object": {"object": "invoice", "id": "in_1", "customer": "cus_2"}}}, "cus_2"),
    ({"data": {"object": {"object": "charge", "id": "ch_1", "customer": {"id": "cus_3"}}}}, "cus_3"),
    ({"data": {"object": {"object": "product", "id": "prod_1"}}}, None)])
def test_the_customer_an_event_concerns(event: dict[str, Any], customer: str | None) -> None:
    """The object itself, its customer id, or its expanded customer; none for objects of no customer."""
    assert customer_of(event) == customer


def test_a_rejection_names_the_stripe_object_and_the_others_are_stored(tmp_path: Path) -> None:
    """A subscription paid by a method that is not a card (SEPA) breaks the contract: that customer alone is
    rejected, naming it, the subscription and the field; the other customer is stored."""
    engine = store.connect(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    sepa = {"id": "sub_sepa", "status": "active", "default_payment_method": "pm_sepa", "items": {"data": []}}
    broken = Bundle(customer={"id": "cus_bad", "email": "a@example.com", "metadata": {}}, subscriptions=[sepa])
    errors: list[str] = []
    summary = SyncSummary()
    store_bundles(engine, [broken, _bundle()], Settings(), summary, errors.append)
    assert (summary.imported, summary.rejected) == (1, 1)
    assert errors == ['customer cus_bad: subscription sub_sepa: subscriptions[0].payment_method: '
                      'unknown payment method "pm_sepa"']
