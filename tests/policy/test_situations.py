"""The policy contract, one situation per row: which notices, at which stage, with which status and key."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from .builders import account, bank, cancelled, card, charge, invoice, lines, plan_of, sub

K = "past_due:acct_1:pm_1:2026-11-01:"
C = "card_charge_failed:acct_1:pm_1:"
PD = "pending_deletion:sub_1:"


def row(name: str, data: dict, as_of: str, expected: list[str], handled: tuple[str, ...] = (), **fields):
    """One situation: the state, the moment, the keys already handled, the entries and some of their fields."""
    return pytest.param(data, as_of, handled, expected, fields, id=name)


ROWS = [
    # past_due stages, counted in local calendar days (Paris is UTC+1 in November: 09:00Z is 10:00 local).
    row("due-date-itself-is-not-past-due", account(), "2026-11-01T09:00:00Z", []),
    row("stage-1-the-day-after-due", account(), "2026-11-02T09:00:00Z", [f"send {K}1"],
        episode_start=date(2026, 11, 1), disable_date=None, final_stage=False, local_date=date(2026, 11, 2),
        amounts={"EUR": D("100.00")}, invoices=("inv_1",), subscriptions=("sub_1",), trigger_charge=None),
    row("stage-2-after-stage-1-was-sent", account(), "2026-11-08T09:00:00Z", [f"send {K}2"], (f"{K}1",)),
    row("stage-2-not-before-its-day", account(), "2026-11-07T09:00:00Z", [], (f"{K}1",)),
    row("cron-down-ten-days-sends-only-the-highest-stage", account(), "2026-11-12T09:00:00Z",
        [f"skipped {K}1", f"send {K}2"]),
    row("deployed-late-stage-3-with-1-and-2-skipped", account(), "2026-11-20T09:00:00Z",
        [f"skipped {K}1", f"skipped {K}2", f"send {K}3"], disable_date=date(2026, 12, 1), final_stage=True),
    row("every-stage-handled-means-nothing", account(), "2026-11-20T09:00:00Z", [], (f"{K}1", f"{K}2", f"{K}3")),
    row("past-due-max-60-days-last-day", account(), "2026-12-31T09:00:00Z", [f"send {K}3"], (f"{K}1", f"{K}2")),
    row("past-due-max-60-days-day-after", account(), "2027-01-01T09:00:00Z", [], (f"{K}1", f"{K}2")),
    row("bank-transfer-group-gets-past-due", account(methods=[bank("pm_1")]), "2026-11-02T09:00:00Z",
        [f"send {K}1"]),
    # time zones: the due date is a local calendar date.
    row("auckland-past-due-while-utc-is-still-the-due-date", account(tz="Pacific/Auckland", locale="en-NZ"),
        "2026-11-01T20:00:00Z", [f"send {K}1"], local_date=date(2026, 11, 2)),
    row("auckland-last-second-of-the-due-date", account(tz="Pacific/Auckland", locale="en-NZ"),
        "2026-11-01T10:59:59Z", []),
    row("los-angeles-utc-next-day-is-still-the-due-date", account(tz="America/Los_Angeles", locale="en-US"),
        "2026-11-02T03:00:00Z", []),
    row("los-angeles-next-local-morning", account(tz="America/Los_Angeles", locale="en-US"),
        "2026-11-02T16:00:00Z", [f"send {K}1"], local_date=date(2026, 11, 2)),
    row("dst-paris-autumn-0800-after-the-change-sends", account(invoices=[invoice(due="2026-10-20")]),
        "2026-10-27T07:00:00Z", ["send past_due:acct_1:pm_1:2026-10-20:2"], ("past_due:acct_1:pm_1:2026-10-20:1",)),
    row("dst-paris-autumn-0759-after-the-change-defers", account(invoices=[invoice(due="2026-10-20")]),
        "2026-10-27T06:59:00Z", ["deferred past_due:acct_1:pm_1:2026-10-20:2"],
        ("past_due:acct_1:pm_1:2026-10-20:1",)),
    row("dst-los-angeles-spring-0800-after-the-change-sends",
        account(tz="America/Los_Angeles", invoices=[invoice(due="2026-03-01")]), "2026-03-08T15:00:00Z",
        ["send past_due:acct_1:pm_1:2026-03-01:2"], ("past_due:acct_1:pm_1:2026-03-01:1",)),
    # the send window: start included, end excluded.
    row("window-0759-deferred", account(), "2026-11-02T06:59:00Z", [f"deferred {K}1"]),
    row("window-0800-send", account(), "2026-11-02T07:00:00Z", [f"send {K}1"]),
    row("window-1959-send", account(), "2026-11-02T18:59:59Z", [f"send {K}1"]),
    row("window-2000-deferred", account(), "2026-11-02T19:00:00Z", [f"deferred {K}1"]),
    row("outside-the-window-defers-the-whole-account-skips-included", account(), "2026-11-12T21:00:00Z",
        [f"deferred {K}1", f"deferred {K}2"]),
    # balances.
    row("partial-payment-leaves-the-outstanding-amount", account(invoices=[invoice(paid="40.00")]),
        "2026-11-02T09:00:00Z", [f"send {K}1"], amounts={"EUR": D("60.00")}),
    row("fully-paid-open-invoice-is-quiet", account(invoices=[invoice(paid="100.00")]),
        "2026-11-02T09:00:00Z", []),
    row("void-invoice-is-not-owed", account(invoices=[invoice(status="void")]), "2026-11-02T09:00:00Z", []),
    row("paid-invoice-is-quiet", account(invoices=[invoice(status="paid", paid="100.00")]),
        "2026-11-02T09:00:00Z", []),
    row("payment-after-the-first-reminder-stops-the-sequence",
        account(invoices=[invoice(status="paid", paid="100.00")]), "2026-11-08T09:00:00Z", [], (f"{K}1",)),
    row("several-subscriptions-on-one-card-share-one-email",
        account(subs=[sub("sub_1"), sub("sub_2")],
                invoices=[invoice("inv_1", "sub_1"), invoice("inv_2", "sub_2", due="2026-11-05", total="50.00")]),
        "2026-11-06T09:00:00Z", [f"send {K}1"], subscriptions=("sub_1", "sub_2"), invoices=("inv_1", "inv_2"),
        amounts={"EUR": D("150.00")}, shared_card=True),
    row("two-payment-methods-one-email-each",
        account(methods=[card("pm_1"), bank("pm_2")], subs=[sub("sub_1", "pm_1"), sub("sub_2", "pm_2")],
                invoices=[invoice("inv_1", "sub_1"), invoice("inv_2", "sub_2", due="2026-11-05")]),
        "2026-11-06T09:00:00Z", [f"send {K}1", "send past_due:acct_1:pm_2:2026-11-05:1"],
        subscriptions=("sub_1",), shared_card=False),
    row("two-currencies-on-one-card",
        account(invoices=[invoice("inv_1"), invoice("inv_2", currency="USD", total="30.00")]),
        "2026-11-02T09:00:00Z", [f"send {K}1"], amounts={"EUR": D("100.00"), "USD": D("30.00")}),
    row("jpy-has-no-decimals", account(invoices=[invoice(currency="JPY", total="1500")]),
        "2026-11-02T09:00:00Z", [f"send {K}1"], amounts={"JPY": D("1500")}),
    row("invoice-not-yet-due-counts-in-the-balance",
        account(invoices=[invoice("inv_1"), invoice("inv_2", due="2026-12-01", total="50.00")]),
        "2026-11-02T09:00:00Z", [f"send {K}1"], amounts={"EUR": D("150.00")}, invoices=("inv_1", "inv_2"),
        episode_start=date(2026, 11, 1)),
    # card_charge_failed.
    row("card-failure-gets-card-charge-failed",
        account(invoices=[invoice(due="2026-11-20")], charges=[charge(at="2026-11-18T06:00:00Z")]),
        "2026-11-20T09:00:00Z", [f"send {C}ch_1"], trigger_charge="ch_1", stage=None),
    row("card-max-age-3-days-exactly",
        account(invoices=[invoice(due="2026-11-20")], charges=[charge(at="2026-11-17T09:00:00Z")]),
        "2026-11-20T09:00:00Z", [f"send {C}ch_1"]),
    row("card-max-age-3-days-and-a-second",
        account(invoices=[invoice(due="2026-11-20")], charges=[charge(at="2026-11-17T08:59:59Z")]),
        "2026-11-20T09:00:00Z", []),
    row("card-failure-then-success-for-the-invoice-is-quiet",
        account(invoices=[invoice(due="2026-11-20", paid="10.00")],
                charges=[charge("ch_1", at="2026-11-18T06:00:00Z"),
                         charge("ch_2", at="2026-11-19T06:00:00Z", outcome="succeeded")]),
        "2026-11-20T09:00:00Z", []),
    row("new-failure-after-a-notice-is-a-new-notice",
        account(invoices=[invoice(due="2026-11-20")],
                charges=[charge("ch_1", at="2026-11-17T12:00:00Z"), charge("ch_2", at="2026-11-19T12:00:00Z")]),
        "2026-11-20T09:00:00Z", [f"send {C}ch_2"], (f"{C}ch_1",), trigger_charge="ch_2"),
    row("same-failure-never-twice",
        account(invoices=[invoice(due="2026-11-20")],
                charges=[charge("ch_1", at="2026-11-17T12:00:00Z"), charge("ch_2", at="2026-11-19T12:00:00Z")]),
        "2026-11-20T09:00:00Z", [], (f"{C}ch_2",)),
    row("bank-transfer-failure-gets-no-card-notice",
        account(methods=[bank("pm_1")], invoices=[invoice(due="2026-11-20")],
                charges=[charge(at="2026-11-18T06:00:00Z")]), "2026-11-20T09:00:00Z", []),
    row("failure-for-a-paid-invoice-is-quiet",
        account(invoices=[invoice(due="2026-11-20", status="paid", paid="100.00")],
                charges=[charge(at="2026-11-18T06:00:00Z")]), "2026-11-20T09:00:00Z", []),
    row("failure-for-a-paid-invoice-is-quiet-even-with-another-owed",
        account(invoices=[invoice("inv_1", due="2026-11-20", status="paid", paid="100.00"),
                          invoice("inv_2", due="2026-12-01")],
                charges=[charge(at="2026-11-18T06:00:00Z")]), "2026-11-20T09:00:00Z", []),
    row("failure-on-a-replaced-card-is-quiet",
        account(methods=[card("pm_1"), card("pm_2")], subs=[sub(pm="pm_2")], invoices=[invoice(due="2026-11-20")],
                charges=[charge(at="2026-11-18T06:00:00Z", pm="pm_1")]), "2026-11-20T09:00:00Z", []),
    row("past-due-supersedes-card-charge-failed-and-names-the-failure",
        account(charges=[charge(at="2026-11-01T06:00:00Z")]), "2026-11-02T09:00:00Z",
        [f"superseded {C}ch_1", f"send {K}1"], trigger_charge="ch_1"),
    row("superseding-is-deferred-with-its-group",
        account(charges=[charge(at="2026-11-01T06:00:00Z")]), "2026-11-02T05:00:00Z",
        [f"deferred {C}ch_1", f"deferred {K}1"]),
    row("new-failure-after-past-due-was-sent-gets-a-card-notice",
        account(charges=[charge("ch_2", at="2026-11-04T06:00:00Z")]), "2026-11-04T09:00:00Z",
        [f"send {C}ch_2"], (f"{K}1",)),
    # only the past counts.
    row("charge-attempted-after-as-of-is-ignored",
        account(invoices=[invoice(due="2026-11-20")], charges=[charge(at="2026-11-20T09:00:01Z")]),
        "2026-11-20T09:00:00Z", []),
    row("success-after-as-of-is-ignored",
        account(invoices=[invoice(due="2026-11-20")],
                charges=[charge("ch_1", at="2026-11-19T09:00:00Z"),
                         charge("ch_2", at="2026-11-20T12:00:00Z", outcome="succeeded")]),
        "2026-11-20T09:00:00Z", [f"send {C}ch_1"]),
    row("cancellation-after-as-of-leaves-the-subscription-live",
        account(subs=[cancelled(at="2026-11-21T00:00:00Z")]), "2026-11-02T09:00:00Z", [f"send {K}1"]),
    # service_cancelled.
    row("customer-request-cancellation-gets-nothing",
        account(subs=[cancelled(reason="customer_request")]), "2026-11-20T09:00:00Z", []),
    row("service-cancelled-within-7-days",
        account(subs=[cancelled(at="2026-11-18T15:00:00Z")], invoices=[invoice(due="2026-10-01")]),
        "2026-11-20T09:00:00Z", ["send service_cancelled:sub_1"], stage=None,
        deletion_date=date(2027, 2, 16), days_left=88, amounts={"EUR": D("100.00")}, invoices=("inv_1",)),
    row("service-cancelled-max-age-7-days-exactly",
        account(subs=[cancelled(at="2026-11-13T09:00:00Z")]), "2026-11-20T09:00:00Z",
        ["send service_cancelled:sub_1"]),
    row("service-cancelled-7-days-and-a-second",
        account(subs=[cancelled(at="2026-11-13T08:59:59Z")]), "2026-11-20T09:00:00Z", []),
    row("service-cancelled-two-subscriptions-one-email-earliest-deletion-date",
        account(subs=[cancelled("sub_1", at="2026-11-17T10:00:00Z"), cancelled("sub_2", at="2026-11-18T10:00:00Z")],
                invoices=[]),
        "2026-11-20T09:00:00Z", ["send service_cancelled:sub_1 service_cancelled:sub_2"],
        deletion_date=date(2027, 2, 15), amounts={}, subscriptions=("sub_1", "sub_2")),
    row("cancelled-subscription-leaves-the-card-group",
        account(subs=[cancelled("sub_1"), sub("sub_2")], invoices=[invoice("inv_1", "sub_1")]),
        "2026-11-20T09:00:00Z", ["send service_cancelled:sub_1"]),
    row("data-deleted-gets-nothing-more",
        account(subs=[cancelled(at="2026-08-25T10:00:00Z", data_deleted=True)]), "2026-11-20T09:00:00Z", []),
    # pending_deletion: deletion date = local cancellation date + 90 days.
    row("pending-deletion-stage-1-thirty-days-before",
        account(subs=[cancelled(at="2026-09-21T10:00:00Z")]), "2026-11-20T09:00:00Z", [f"send {PD}1"],
        deletion_date=date(2026, 12, 20), days_left=30, final_stage=False),
    row("pending-deletion-catch-up-skips-the-lower-stage",
        account(subs=[cancelled(at="2026-08-25T10:00:00Z")]), "2026-11-20T09:00:00Z",
        [f"skipped {PD}1", f"send {PD}2"], deletion_date=date(2026, 11, 23), days_left=3),
    row("pending-deletion-stage-3-the-day-before",
        account(subs=[cancelled(at="2026-08-23T10:00:00Z")]), "2026-11-20T09:00:00Z", [f"send {PD}3"],
        (f"{PD}1", f"{PD}2"), days_left=1, final_stage=True),
    row("pending-deletion-until-the-deletion-date-itself",
        account(subs=[cancelled(at="2026-08-22T10:00:00Z")]), "2026-11-20T09:00:00Z", [f"send {PD}3"],
        (f"{PD}1", f"{PD}2"), days_left=0),
    row("pending-deletion-none-after-the-deletion-date",
        account(subs=[cancelled(at="2026-08-21T10:00:00Z")]), "2026-11-20T09:00:00Z", [], (f"{PD}1", f"{PD}2")),
    row("pending-deletion-deletion-date-is-local-to-the-account",
        account(tz="Pacific/Auckland", subs=[cancelled(at="2026-09-20T13:00:00Z")]), "2026-11-19T22:00:00Z",
        [f"send {PD}1"], deletion_date=date(2026, 12, 20)),
    row("pending-deletion-two-subscriptions-same-date-one-email",
        account(subs=[cancelled("sub_1", at="2026-09-21T08:00:00Z"), cancelled("sub_2", at="2026-09-21T12:00:00Z")],
                invoices=[invoice("inv_1", "sub_1"), invoice("inv_2", "sub_2", currency="SEK", total="99.50")]),
        "2026-11-20T09:00:00Z", ["send pending_deletion:sub_1:1 pending_deletion:sub_2:1"],
        subscriptions=("sub_1", "sub_2"), amounts={"EUR": D("100.00"), "SEK": D("99.50")}),
    row("pending-deletion-different-deletion-dates-two-emails",
        account(subs=[cancelled("sub_1", at="2026-09-21T10:00:00Z"), cancelled("sub_2", at="2026-09-20T10:00:00Z")]),
        "2026-11-20T09:00:00Z", ["send pending_deletion:sub_2:1", "send pending_deletion:sub_1:1"],
        deletion_date=date(2026, 12, 19)),
    row("pending-deletion-email-lists-only-subscriptions-not-yet-handled",
        account(subs=[cancelled("sub_1", at="2026-09-21T08:00:00Z"), cancelled("sub_2", at="2026-09-21T12:00:00Z")]),
        "2026-11-20T09:00:00Z", ["send pending_deletion:sub_2:1"], ("pending_deletion:sub_1:1",),
        subscriptions=("sub_2",)),
]


@pytest.mark.parametrize("data, as_of, handled, expected, fields", ROWS)
def test_situation(data, as_of, handled, expected, fields):
    """The situation plans exactly these entries (status and keys, in order) with these details."""
    planned = plan_of(data, as_of, handled)
    assert lines(planned) == expected
    if fields:
        target = next(p for p in planned if p.status in ("send", "deferred"))
        assert {name: getattr(target, name) for name in fields} == fields


def test_recipients_are_the_billing_contact_and_the_cc_list():
    """Every notice goes to the billing contact, with the account's cc list (sorted, once each) in copy."""
    data = account(cc=["z@acct.example", "a@acct.example", "z@acct.example"])
    (planned,) = plan_of(data, "2026-11-02T09:00:00Z")
    assert planned.to == ("billing@acct-1.example",)
    assert planned.cc == ("a@acct.example", "z@acct.example")


def test_naive_as_of_is_refused():
    """as_of without a time zone is a programming error, never silently taken as UTC or local time."""
    from datetime import datetime
    with pytest.raises(ValueError, match="aware"):
        plan_of(account(), datetime(2026, 11, 2, 9))
