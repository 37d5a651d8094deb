"""`dunning suppressions`: list with who, when and why; add and remove refuse bad input before any write."""

from __future__ import annotations

import json

from dunning import store
from dunning.bounces.suppressions import unreachable_accounts
from dunning.bounces.verp import parse_verp, verp_address
from tests.query_plans import table_steps

from .conftest import account, cli, import_accounts


def test_add_list_and_remove_with_who_and_why(bounce_settings, capsys):
    """An address added by hand is listed with its reason and author, and is gone once removed."""
    assert cli(capsys, "suppressions", "add", "Jane@Contoso.example", "--reason", "closed", "--by", "ops")[0] == 0
    code, out = cli(capsys, "suppressions", "list", "--json")
    (entry,) = json.loads(out)
    assert (entry["address"], entry["reason"], entry["detail"], entry["by"]) == (
        "jane@contoso.example", "manual", "closed", "ops")
    assert "jane@contoso.example\tmanual" in cli(capsys, "suppressions", "list")[1]
    assert cli(capsys, "suppressions", "remove", "jane@contoso.example")[0] == 0
    assert json.loads(cli(capsys, "suppressions", "list", "--json")[1]) == []


def test_bad_requests_change_nothing(bounce_settings, capsys):
    """A non-address, or removing an address that is not suppressed, exits 65 and writes nothing."""
    assert cli(capsys, "suppressions", "add", "ok@contoso.example", "not an address")[0] == 65
    assert cli(capsys, "suppressions", "add", "ok@contoso.example")[0] == 0
    assert cli(capsys, "suppressions", "remove", "ok@contoso.example", "other@contoso.example")[0] == 65
    assert [e["address"] for e in json.loads(cli(capsys, "suppressions", "list", "--json")[1])] == [
        "ok@contoso.example"]


def test_accounts_lists_who_owes_money_with_no_reachable_contact(bounce_settings, capsys):
    """--accounts names each owing account whose every address is suppressed, with its balance; an account
    with a cc still reachable is not listed."""
    import_accounts(bounce_settings, account("acct_1", "jane@contoso.example", total="1234.50"),
                    account("acct_2", "joe@fabrikam.example", cc=("ap@fabrikam.example",)))
    cli(capsys, "suppressions", "add", "jane@contoso.example", "joe@fabrikam.example")
    found = json.loads(cli(capsys, "suppressions", "list", "--accounts", "--json")[1])
    assert found == [{"account": "acct_1", "name": "acct_1 SARL", "addresses": ["jane@contoso.example"],
                      "balance": {"EUR": "1234.50"}}]


def test_unreachable_balances_are_read_by_account(sqlite_url, monkeypatch, capsys):
    """The balances of unreachable accounts are read by their ids, not by a walk of every owed invoice in the
    store (whose count has no bound)."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    import_accounts(sqlite_url, account("acct_1", "jane@contoso.example"), account("acct_2", "joe@fabrikam.example"))
    cli(capsys, "suppressions", "add", "jane@contoso.example")
    found: list = []
    engine = store.connect(sqlite_url)
    plans = table_steps(engine, lambda: found.extend(unreachable_accounts(engine)))
    assert [unreachable.account for unreachable in found] == ["acct_1"]
    invoice_steps = [step for plan in plans for step in plan if "invoices" in step]
    assert invoice_steps and all("(account_id=?)" in step for step in invoice_steps), plans


def test_verp_round_trip_and_refusals():
    """A VERP address names its email under any key of the rotation and in any case; a wrong key, a
    changed id or another mailbox names none."""
    address = verp_address("bounces@billing.example.com", 42, "new-key")
    assert parse_verp(address.upper(), "bounces@billing.example.com", ["old-key", "new-key"]) == 42
    assert parse_verp(address, "bounces@billing.example.com", ["old-key"]) is None
    assert parse_verp(address.replace("+42.", "+43."), "bounces@billing.example.com", ["new-key"]) is None
    assert parse_verp(address, "other@billing.example.com", ["new-key"]) is None
