"""`dunning sync stripe` against localstripe, then `dunning plan` on what it stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from sqlalchemy import select

from dunning import store
from dunning.cli import main
from dunning.settings import load_settings
from tests.stripe.conftest import add_customer, free_port, this_month

DECLINED = "4000000000000341"  # attaches, then every charge on it is declined


def _sync(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any], str]:
    code = main(["sync", "stripe", "--json", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _plan(capsys: pytest.CaptureFixture[str]) -> dict[str, list[dict[str, Any]]]:
    """The notices a run would send now, by account (one minute ahead, never in a window's last minute)."""
    as_of = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    if as_of.minute == 59:
        as_of += timedelta(minutes=2)
    assert main(["plan", "--format", "json", "--as-of", as_of.isoformat()]) == 0
    by_account: dict[str, list[dict[str, Any]]] = {}
    for notice in json.loads(capsys.readouterr().out):
        assert notice["status"] == "send", notice  # nothing deferred, skipped or superseded on fresh data
        by_account.setdefault(notice["account"], []).append(notice)
    return by_account


def _rows() -> dict[str, list[tuple[Any, ...]]]:
    engine = store.connect(load_settings().database.url)
    tables = (store.accounts, store.payment_methods, store.subscriptions, store.invoices, store.charges)
    with engine.connect() as conn:
        rows = {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in tables}
    engine.dispose()
    return rows


def test_sync_then_plan_gives_the_notices_the_mapping_implies(api: stripe.StripeClient, capsys) -> None:
    """Declined cards get card_charge_failed (JPY in whole yen), a card expiring this month card_expiring,
    a customer without an email is rejected alone, and a second sync changes nothing."""
    declined_eur = add_customer(api, email="compta@contoso.example", name="Contoso SARL", card=DECLINED,
                                preferred_locales=["fr-FR"], metadata={"timezone": "Europe/Paris"})
    declined_jpy = add_customer(api, email="keiri@example.jp", name="Example KK", card=DECLINED, currency="jpy",
                                amount=1500, preferred_locales=["ja-JP"], metadata={"timezone": "Asia/Tokyo"})
    expiring = add_customer(api, email="billing@expiring.example", name="Expiring Ltd", expires=this_month())
    paying = add_customer(api, email="ap@paying.example", name="Paying Inc")
    nameless = add_customer(api, email=None, name="No Email GmbH", card=DECLINED)

    code, summary, err = _sync(capsys)

    assert code == 65
    assert (summary["mode"], summary["customers"], summary["imported"], summary["rejected"]) == ("full", 5, 4, 1)
    assert f"rejected: customer {nameless['customer']}: email: required field is missing" in err
    plan = _plan(capsys)
    assert sorted(plan) == sorted([declined_eur["customer"], declined_jpy["customer"], expiring["customer"]])
    [eur] = plan[declined_eur["customer"]]
    assert (eur["notice"], eur["payment_method"], eur["amounts"]) == (
        "card_charge_failed", declined_eur["payment_method"], {"EUR": "25.00"})
    assert eur["requested_locale"] == "fr-FR"
    [jpy] = plan[declined_jpy["customer"]]
    assert (jpy["notice"], jpy["amounts"]) == ("card_charge_failed", {"JPY": "1500"})
    [card] = plan[expiring["customer"]]
    assert (card["notice"], card["stage"], card["payment_method"]) == ("card_expiring", 1, expiring["payment_method"])
    assert paying["customer"] not in plan

    before = _rows()
    code, again, err = _sync(capsys)
    assert again["mode"] == "incremental"
    assert (again["imported"], again["updated"]) == (0, 0)
    assert again["rejected"] == 1 and code == 65  # the customer without an email is still without one
    assert _rows() == before

    code, third, _err = _sync(capsys)
    assert (code, third["customers"], third["events"]) == (0, 0, 0)  # every event applied: nothing to read


def test_a_paid_invoice_is_picked_up_by_the_next_sync(api: stripe.StripeClient, capsys) -> None:
    """Paying the declined invoice with a new card: the next (incremental) sync stores it paid, and the
    card_charge_failed notice is no longer planned."""
    declined = add_customer(api, email="ap@late.example", name="Late Payer", card=DECLINED)
    assert _sync(capsys)[0] == 0
    assert [n["notice"] for n in _plan(capsys)[declined["customer"]]] == ["card_charge_failed"]
    good = api.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 1, "exp_year": 2031, "cvc": "123"}})
    api.v1.payment_methods.attach(good.id, params={"customer": declined["customer"]})
    api.v1.customers.update(declined["customer"], params={"invoice_settings": {"default_payment_method": good.id}})
    [invoice] = api.v1.invoices.list(params={"customer": declined["customer"]}).data
    api.v1.invoices.pay(invoice.id)

    code, summary, _err = _sync(capsys)

    assert (code, summary["mode"], summary["updated"]) == (0, "incremental", 1)
    assert summary["events"] > 0
    assert declined["customer"] not in _plan(capsys)
    rows = _rows()
    status = list(store.invoices.c.keys()).index("status")
    assert [(r[0], r[status]) for r in rows["invoices"]] == [(invoice.id, "paid")]
    assert {r[0] for r in rows["payment_methods"]} == {declined["payment_method"], good.id}


def test_full_forces_a_pass_over_every_customer(api: stripe.StripeClient, capsys) -> None:
    """--full reads every customer again; nothing changed, so every record is unchanged."""
    add_customer(api, email="a@example.com", name="A")
    add_customer(api, email="b@example.com", name="B")
    assert _sync(capsys)[0] == 0
    code, summary, _err = _sync(capsys, "--full")
    assert (code, summary["mode"], summary["customers"], summary["unchanged"]) == (0, "full", 2, 2)


def test_a_missing_key_is_a_configuration_error(api: stripe.StripeClient, monkeypatch, capsys) -> None:
    """No DUNNING_STRIPE__API_KEY: exit 78 before anything is read."""
    monkeypatch.delenv("DUNNING_STRIPE__API_KEY")
    assert main(["sync", "stripe"]) == 78
    assert "DUNNING_STRIPE__API_KEY" in capsys.readouterr().err


def test_a_refused_key_is_a_configuration_error(api: stripe.StripeClient, monkeypatch, capsys) -> None:
    """A key Stripe answers 401 to: exit 78, naming the variable."""
    monkeypatch.setenv("DUNNING_STRIPE__API_KEY", "rk_not_a_secret_key")
    assert main(["sync", "stripe"]) == 78
    assert "refused the API key" in capsys.readouterr().err


def test_an_unreachable_stripe_is_unavailable(api: stripe.StripeClient, monkeypatch, capsys) -> None:
    """Nothing listens at api_base: exit 69."""
    monkeypatch.setenv("DUNNING_STRIPE__API_BASE", f"http://127.0.0.1:{free_port()}")
    assert main(["sync", "stripe"]) == 69
    assert "Stripe cannot be reached" in capsys.readouterr().err
