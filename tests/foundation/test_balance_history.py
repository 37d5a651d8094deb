"""The store's balance history: import (and --as-of) dates every change of a group's balance."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime

import orjson
from sqlalchemy import select

from dunning import store
from dunning.billing import balances, importer
from dunning.cli import main
from tests.query_plans import table_steps

ACCOUNT = {
    "id": "acct_1", "name": "Contoso", "email": "compta@contoso.example", "locale": "fr-FR",
    "timezone": "Europe/Paris",
    "payment_methods": [{"id": "pm_1", "type": "card", "brand": "visa", "last4": "4242", "exp_month": 3,
                         "exp_year": 2027}],
    "subscriptions": [{"id": "sub_1", "name": "Cloud", "payment_method": "pm_1", "status": "past_due"}],
    "invoices": [{"id": "inv_1", "subscription": "sub_1", "currency": "EUR", "total": "120.00",
                  "amount_paid": "20.00", "issued_date": "2026-10-20", "due_date": "2026-11-01", "status": "open"}],
}
T1, T2, T3 = (datetime(2026, 11, day, 9, tzinfo=UTC) for day in (2, 5, 9))


def _paid(account: dict) -> dict:
    paid = copy.deepcopy(account)
    paid["invoices"][0].update(status="paid", amount_paid="120.00")
    return paid


def _history(engine) -> list[tuple]:
    h = store.balance_history
    with engine.connect() as conn:
        rows = conn.execute(select(h.c.account_id, h.c.payment_method_id, h.c.balance, h.c.live, h.c.changed_at)
                            .order_by(h.c.id)).all()
    return [(a, pm, orjson.loads(balance), live, at) for a, pm, balance, live, at in rows]


def _import(engine, account: dict, as_of: datetime) -> None:
    data = json.dumps(account).encode() + b"\n"
    importer.import_stream(engine, io.BytesIO(data), batch_size=10, as_of=as_of)


def test_a_balance_and_its_settlement_are_dated_as_of(database_url):
    """An owed balance is recorded when imported, the payment when the paid state is imported, each at its as_of."""
    engine = store.connect(database_url)
    _import(engine, ACCOUNT, T1)
    _import(engine, ACCOUNT, T2)  # unchanged: nothing recorded
    _import(engine, _paid(ACCOUNT), T3)
    assert _history(engine) == [("acct_1", "pm_1", {"EUR": "100.00"}, True, T1),
                                ("acct_1", "pm_1", {}, True, T3)]


def test_a_cancelled_group_is_recorded_as_not_live(database_url):
    """Cancelling the group's last subscription empties its balance without making it live (not a settlement)."""
    engine = store.connect(database_url)
    _import(engine, ACCOUNT, T1)
    cancelled = copy.deepcopy(ACCOUNT)
    cancelled["subscriptions"][0].update(status="cancelled", cancelled_at="2026-11-08T00:00:00Z")
    _import(engine, cancelled, T3)
    assert _history(engine)[-1] == ("acct_1", "pm_1", {}, False, T3)


def test_import_takes_as_of(sqlite_url, tmp_path, monkeypatch):
    """`dunning import --as-of` dates what it brings; a bad moment is a usage error naming the option."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    path = tmp_path / "state.jsonl"
    path.write_text(json.dumps(ACCOUNT) + "\n")
    assert main(["import", str(path), "--as-of", "2026-11-02T09:00:00Z"]) == 0
    assert _history(store.connect(sqlite_url))[0][-1] == T1


def test_balances_are_read_by_account_not_over_every_owed_invoice(sqlite_url):
    """Each query of a balance read finds its rows by the accounts' ids: a walk of the owed-invoice index
    would read every owed invoice of the store for each batch an import writes."""
    engine = store.connect(sqlite_url)
    _import(engine, ACCOUNT, T1)
    read: dict = {}
    with engine.connect() as conn:
        plans = table_steps(engine, lambda: read.update(balances.read_balances(conn, ["acct_1"])))
    assert read["acct_1", "pm_1"].amounts
    assert len(plans) == 2 and all(plans), plans
    assert all("(account_id=?)" in step or "(id=?)" in step for plan in plans for step in plan), plans
