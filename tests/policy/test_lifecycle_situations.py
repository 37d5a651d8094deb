"""The lifecycle rules (card_expiring, balance_settled, pause, segments), one situation per row."""

from __future__ import annotations

from datetime import date

import pytest

from dunning.settings import Settings

from .builders import account, bank, cancelled, card, charge, invoice, lines, plan_of, sub

K = "past_due:acct_1:pm_1:2026-11-01:"
C = "card_charge_failed:acct_1:pm_1:"
X = "card_expiring:acct_1:pm_1:2026-12:"  # a card that works through 2026-12-31
S = "balance_settled:"
SEGMENTS = Settings(segments={
    "enterprise": {"past_due": {"days_after_due": [3, 10]}, "card_expiring": {"days_before": [45, 14]}},
    "office-hours": {"policy": {"send_window": "09:00-17:00"}}})


def expiring(**extra) -> dict:
    """An account whose only card expires in December 2026 and whose invoices are paid."""
    return account(methods=[card(expires="2026-12")], invoices=[], **extra)


def settled(**extra) -> dict:
    """An account whose one invoice is paid."""
    return account(invoices=[invoice(status="paid", paid="100.00")], **extra)


def row(name: str, data: dict, as_of: str, expected: list[str], handled: tuple[str, ...] = (),
        sent: dict[str, str] | None = None, settings: Settings | None = None, **fields):
    """One situation: state, moment, keys handled, dunning keys sent (and when), the entries and some fields."""
    return pytest.param(data, as_of, handled, sent or {}, settings, expected, fields, id=name)


ROWS = [
    # card_expiring: stages from E - [30, 7] days (E = 2027-01-01) in the local calendar, until the last day.
    row("expiring-nothing-the-day-before-stage-1", expiring(), "2026-12-01T09:00:00Z", []),
    row("expiring-stage-1-from-its-local-day", expiring(), "2026-12-02T09:00:00Z", [f"send {X}1"],
        stage=1, final_stage=False, subscriptions=("sub_1",), invoices=(), amounts={}, local_date=date(2026, 12, 2)),
    row("expiring-stage-2", expiring(), "2026-12-25T09:00:00Z", [f"send {X}2"], (f"{X}1",), final_stage=True),
    row("expiring-stage-2-not-before-its-day", expiring(), "2026-12-24T09:00:00Z", [], (f"{X}1",)),
    row("expiring-cron-down-skips-the-lower-stage", expiring(), "2026-12-26T09:00:00Z",
        [f"skipped {X}1", f"send {X}2"]),
    row("expiring-the-last-day-of-the-expiry-month", expiring(), "2026-12-31T09:00:00Z", [f"send {X}2"], (f"{X}1",)),
    row("expiring-nothing-from-the-first-day-after", expiring(), "2027-01-01T09:00:00Z", [], (f"{X}1",)),
    row("expiring-stage-2-handled-means-nothing", expiring(), "2026-12-28T09:00:00Z", [], (f"{X}1", f"{X}2")),
    row("expiring-auckland-stage-1-while-utc-is-the-day-before", expiring(tz="Pacific/Auckland", locale="en-NZ"),
        "2026-12-01T20:00:00Z", [f"send {X}1"], local_date=date(2026, 12, 2)),
    row("expiring-auckland-last-hour-of-the-day-before", expiring(tz="Pacific/Auckland", locale="en-NZ"),
        "2026-12-01T10:59:59Z", []),
    row("expiring-auckland-nothing-on-the-local-first-day-after", expiring(tz="Pacific/Auckland", locale="en-NZ"),
        "2026-12-31T11:00:00Z", [], (f"{X}1",)),
    row("expiring-los-angeles-still-the-last-local-day", expiring(tz="America/Los_Angeles", locale="en-US"),
        "2027-01-01T03:00:00Z", [f"send {X}2"], (f"{X}1",), local_date=date(2026, 12, 31)),
    row("expiring-los-angeles-first-local-day-after", expiring(tz="America/Los_Angeles", locale="en-US"),
        "2027-01-01T17:00:00Z", [], (f"{X}1",)),
    row("expiring-superseded-by-past-due",
        account(methods=[card(expires="2026-12")], invoices=[invoice(due="2026-12-01")]), "2026-12-02T09:00:00Z",
        ["send past_due:acct_1:pm_1:2026-12-01:1", f"superseded {X}1"]),
    row("expiring-superseded-by-card-charge-failed",
        account(methods=[card(expires="2026-12")], invoices=[invoice(due="2026-12-05")],
                charges=[charge(at="2026-12-02T06:00:00Z")]), "2026-12-02T09:00:00Z",
        [f"send {C}ch_1", f"superseded {X}1"]),
    row("expiring-not-superseded-when-the-dunning-key-is-held",
        account(methods=[card(expires="2026-12")], invoices=[invoice(due="2026-12-05")],
                charges=[charge(at="2026-12-02T06:00:00Z")]), "2026-12-02T09:00:00Z", [f"send {X}1"], (f"{C}ch_1",)),
    row("expiring-three-subscriptions-one-email",
        account(methods=[card(expires="2026-12")], subs=[sub("sub_1"), sub("sub_2"), sub("sub_3")], invoices=[]),
        "2026-12-02T09:00:00Z", [f"send {X}1"], subscriptions=("sub_1", "sub_2", "sub_3"), shared_card=True),
    row("expiring-card-paying-no-live-subscription-is-quiet",
        account(methods=[card(expires="2026-12")], invoices=[],
                subs=[cancelled(at="2026-11-01T00:00:00Z", reason="customer_request")]), "2026-12-02T09:00:00Z", []),
    row("expiring-bank-transfer-has-no-expiry", account(methods=[bank("pm_1")], invoices=[]), "2026-12-02T09:00:00Z",
        []),
    row("expiring-deferred-outside-the-window", expiring(), "2026-12-02T20:00:00Z", [f"deferred {X}1"]),
    # balance_settled: a sent dunning key recorded at most 30 days before as_of, group settled.
    row("settled-within-30-days", settled(), "2026-11-20T09:00:00Z", [f"send {S}{C}ch_1"],
        sent={f"{C}ch_1": "2026-11-05T09:00:00Z"}, stage=None, subscriptions=("sub_1",), invoices=(), amounts={}),
    row("settled-30-days-exactly", settled(), "2026-11-20T09:00:00Z", [f"send {S}{C}ch_1"],
        sent={f"{C}ch_1": "2026-10-21T09:00:00Z"}),
    row("settled-30-days-and-a-second", settled(), "2026-11-20T09:00:00Z", [],
        sent={f"{C}ch_1": "2026-10-21T08:59:59Z"}),
    row("settled-never-twice", settled(), "2026-11-20T09:00:00Z", [], (f"{S}{C}ch_1",),
        sent={f"{C}ch_1": "2026-11-05T09:00:00Z"}),
    row("settled-answers-the-newest-dunning-key", settled(), "2026-11-20T09:00:00Z", [f"send {S}{K}1"],
        sent={f"{C}ch_1": "2026-11-01T09:00:00Z", f"{K}1": "2026-11-02T09:00:00Z"}),
    row("settled-a-new-episode-gets-a-new-confirmation", settled(), "2026-11-20T09:00:00Z", [f"send {S}{C}ch_9"],
        (f"{S}{K}1",), sent={f"{K}1": "2026-11-02T09:00:00Z", f"{C}ch_9": "2026-11-18T09:00:00Z"}),
    row("settled-a-key-recorded-after-as-of-does-not-count", settled(), "2026-11-20T09:00:00Z", [],
        sent={f"{C}ch_1": "2026-11-20T09:00:01Z"}),
    row("settled-a-key-whose-email-was-not-sent-does-not-count", settled(), "2026-11-20T09:00:00Z", [], (f"{C}ch_1",)),
    row("settled-not-while-an-invoice-is-owed", account(invoices=[invoice(due="2026-12-15")]), "2026-11-20T09:00:00Z",
        [], sent={f"{C}ch_1": "2026-11-05T09:00:00Z"}),
    row("settled-not-when-every-subscription-is-cancelled",
        settled(subs=[cancelled(at="2026-11-10T00:00:00Z", reason="customer_request")]), "2026-11-20T09:00:00Z", [],
        sent={f"{C}ch_1": "2026-11-05T09:00:00Z"}),
    row("settled-only-the-group-that-was-dunned",
        account(methods=[card("pm_1"), card("pm_2")], subs=[sub("sub_1", "pm_1"), sub("sub_2", "pm_2")], invoices=[]),
        "2026-11-20T09:00:00Z", [f"send {S}{C}ch_1"], sent={f"{C}ch_1": "2026-11-05T09:00:00Z"},
        payment_method="pm_1", subscriptions=("sub_1",)),
    row("settled-deferred-outside-the-window", settled(), "2026-11-20T21:00:00Z", [f"deferred {S}{C}ch_1"],
        sent={f"{C}ch_1": "2026-11-05T09:00:00Z"}),
    # pause: every entry is paused, in or out of the window; once over, only the highest stage goes out.
    row("paused-lists-every-entry-as-paused", account(paused_until="2026-11-30T00:00:00Z"), "2026-11-12T09:00:00Z",
        [f"paused {K}1", f"paused {K}2"]),
    row("paused-outside-the-window-is-paused", account(paused_until="2026-11-30T00:00:00Z"), "2026-11-12T21:00:00Z",
        [f"paused {K}1", f"paused {K}2"]),
    row("paused-expiring-card-is-paused", expiring(paused_until="2027-01-01T00:00:00Z"), "2026-12-02T09:00:00Z",
        [f"paused {X}1"]),
    row("pause-over-at-its-moment-resumes-without-a-burst", account(paused_until="2026-11-20T09:00:00Z"),
        "2026-11-20T09:00:00Z", [f"skipped {K}1", f"skipped {K}2", f"send {K}3"]),
    # segments.
    row("segment-stages-not-yet-due", account(segment="enterprise"), "2026-11-03T09:00:00Z", [], settings=SEGMENTS),
    row("segment-stages-first-due", account(segment="enterprise"), "2026-11-04T09:00:00Z", [f"send {K}1"],
        settings=SEGMENTS),
    row("segment-card-expiring-stages", expiring(segment="enterprise"), "2026-11-17T09:00:00Z", [f"send {X}1"],
        settings=SEGMENTS),
    row("unknown-segment-gets-the-defaults", account(segment="nobody"), "2026-11-02T09:00:00Z", [f"send {K}1"],
        settings=SEGMENTS),
    row("segment-send-window-defers", account(segment="office-hours"), "2026-11-02T07:30:00Z", [f"deferred {K}1"],
        settings=SEGMENTS),
    row("segment-send-window-sends-inside", account(segment="office-hours"), "2026-11-02T08:00:00Z", [f"send {K}1"],
        settings=SEGMENTS),
    row("default-window-at-the-same-moment", account(), "2026-11-02T07:30:00Z", [f"send {K}1"], settings=SEGMENTS),
]


@pytest.mark.parametrize("data, as_of, handled, sent, settings, expected, fields", ROWS)
def test_lifecycle_situation(data, as_of, handled, sent, settings, expected, fields):
    """The situation plans exactly these entries (status and keys, in order) with these details."""
    planned = plan_of(data, as_of, handled, settings=settings, sent=sent)
    assert lines(planned) == expected
    if fields:
        target = next(p for p in planned if p.status in ("send", "deferred"))
        assert {name: getattr(target, name) for name in fields} == fields
