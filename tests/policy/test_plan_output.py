"""The plan's JSON has the contract's shape; the table is for people; both stream batch by batch."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from decimal import Decimal

import pytest

from dunning.planning.plan_output import format_amount, notice_json, write_json, write_table

from .builders import account, cancelled, charge, invoice, plan_of, sub

CONTRACT_FIELDS = ["account", "notice", "stage", "payment_method", "status", "amounts", "invoices",
                   "subscriptions", "locale", "to", "keys"]


def _planned():
    """Entries of every notice kind, with a superseded failure, several currencies and JPY."""
    data = account(
        subs=[sub("sub_2"), sub("sub_1"), cancelled("sub_3", at="2026-11-01T12:00:00Z"),
              cancelled("sub_4", at="2026-08-30T12:00:00Z")],
        invoices=[invoice("inv_2", "sub_2", currency="JPY", total="1500"), invoice("inv_1", "sub_1", total="12.5"),
                  invoice("inv_9", "sub_1", currency="USD", total="3.10", paid="1.00")],
        charges=[charge(at="2026-11-01T06:00:00Z")])
    return plan_of(data, "2026-11-02T09:00:00Z")


@pytest.mark.parametrize("amount, currency, text", [
    ("1234.5", "EUR", "1234.50"), ("1500", "JPY", "1500"), ("7", "BHD", "7.000"), ("0.1", "USD", "0.10")])
def test_amounts_have_the_currency_own_decimals(amount, currency, text):
    """Amounts are decimal strings with exactly the currency's number of decimals (JPY none, BHD three)."""
    assert format_amount(Decimal(amount), currency) == text


def test_json_objects_have_the_contract_shape():
    """Every object starts with the contract's fields in order, typed as the contract shows, lists sorted."""
    objects = [notice_json(p) for p in _planned()]
    assert [(o["notice"], o["status"]) for o in objects] == [
        ("card_charge_failed", "superseded"), ("past_due", "send"), ("service_cancelled", "send"),
        ("pending_deletion", "send")]
    for obj in objects:
        assert list(obj)[:len(CONTRACT_FIELDS)] == CONTRACT_FIELDS
        assert obj["stage"] is None if obj["notice"] in ("card_charge_failed", "service_cancelled") else (
            isinstance(obj["stage"], int))
        for name in ("invoices", "subscriptions", "to", "keys", "cc"):
            assert isinstance(obj[name], list) and obj[name] == sorted(obj[name])
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in obj["amounts"].items())
        assert list(obj["amounts"]) == sorted(obj["amounts"])
        assert isinstance(obj["locale"], str) and obj["to"] == ["billing@acct-1.example"]
    past_due = objects[1]
    assert past_due["amounts"] == {"EUR": "12.50", "JPY": "1500", "USD": "2.10"}
    assert past_due["invoices"] == ["inv_1", "inv_2", "inv_9"] and past_due["subscriptions"] == ["sub_1", "sub_2"]
    assert past_due["keys"] == ["past_due:acct_1:pm_1:2026-11-01:1"] and past_due["locale"] == "fr-FR"


def test_write_json_streams_one_valid_array():
    """Batches are written as one JSON array, one object per line; an empty plan is []."""
    out = io.StringIO()
    planned = _planned()
    counts = write_json(iter([planned[:1], [], planned[1:]]), out)
    text = out.getvalue()
    assert json.loads(text) == [notice_json(p) for p in planned]
    assert text.count("\n") == len(planned) + 2 and counts == {"send": 3, "superseded": 1}
    empty = io.StringIO()
    write_json(iter([]), empty)
    assert empty.getvalue() == "[]\n"


def test_table_lists_account_notice_stage_amounts_status_and_why():
    """The table has one aligned line per entry, one more per further currency, then a summary line."""
    out = io.StringIO()
    write_table(iter([_planned()]), out)
    text = out.getvalue().splitlines()
    assert text[0].split() == ["account", "notice", "stage", "amounts", "status", "why"]
    assert "past_due" in text[4] and text[4].split()[3:6] == ["EUR", "12.50", "send"]
    assert text[5].split() == ["JPY", "1500"] and text[6].split() == ["USD", "2.10"]
    assert "stage 1 of the episode from 2026-11-01" in text[4]
    assert text[-1] == "3 send, 0 deferred, 0 skipped, 1 superseded"
    assert text[7].index("send") == text[0].index("status")
    assert all(line == line.rstrip() for line in text)


def test_table_columns_never_shift_with_long_amounts_or_ids():
    """Huge amounts in many currencies and an overlong account id leave every status in the status column."""
    planned = _planned()
    long = [replace(p, account="acct_" + "9" * 40, amounts={"EUR": Decimal("123456789012345.5"),
                                                          "JPY": Decimal("98765432109876"),
                                                          "KWD": Decimal("1234567.125")}) for p in planned]
    out = io.StringIO()
    write_table(iter([planned, long]), out)
    text = out.getvalue().splitlines()
    column = text[0].index("status")
    statuses = [line for line in text[1:-1] if line[column:column + 10].strip()]
    assert len(statuses) == 2 * len(planned)
    assert all(line[column:].split()[0] in ("send", "superseded") for line in statuses)
    assert "EUR 123456789012345.50" in out.getvalue()
    account_cells = [line[:16] for line in text]
    assert "acct_" + "9" * 11 in account_cells and "9" * 16 in account_cells  # folded, not spilling over


def test_table_says_so_when_nothing_is_due():
    """An empty plan prints the header and "nothing is due"."""
    out = io.StringIO()
    write_table(iter([[], []]), out)
    assert out.getvalue().splitlines()[-1] == "nothing is due"
