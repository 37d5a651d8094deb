"""The render context lists a notice's subscriptions by name, its invoices by due date and its balance by currency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from dunning.planning.notice_context import build_context, revive, to_json
from dunning.settings import Settings
from tests.policy.builders import account, card, charge, invoice, model, plan_of, sub

LINE = account(methods=[card()],
               subs=[sub("sub_b", name="Zeta"), sub("sub_a", name="Alpha"), sub("sub_c", name="Alpha")],
               invoices=[invoice("inv_3", "sub_b", due="2026-11-03", total="30.00", currency="USD"),
                         invoice("inv_1", "sub_c", due="2026-11-02", total="10.00"),
                         invoice("inv_2", "sub_a", due="2026-11-02", total="20.00"),
                         invoice("inv_0", "sub_a", due="2026-10-01", total="5.00", status="paid", paid="5.00")],
               charges=[charge("ch_1", "inv_1", at="2026-11-20T06:00:00Z")])


def _context() -> dict[str, Any]:
    sending = [notice for notice in plan_of(LINE, "2026-11-20T09:00:00Z") if notice.status == "send"]
    assert [notice.notice for notice in sending] == ["past_due"]
    return build_context(sending[0], model(LINE), Settings(), "https://pay.example/t")


def test_lists_in_their_order() -> None:
    context = _context()
    assert [(s["name"], s["id"]) for s in context["subscriptions"]] == [
        ("Alpha", "sub_a"), ("Alpha", "sub_c"), ("Zeta", "sub_b")]
    assert [i["id"] for i in context["invoices"]] == ["inv_1", "inv_2", "inv_3"]  # by due date, then id
    assert context["invoices"][0]["subscription_name"] == "Alpha"
    assert context["balance"] == [{"currency": "EUR", "amount": Decimal("30.00")},
                                  {"currency": "USD", "amount": Decimal("30.00")}]
    assert context["failure"]["charge_id"] == "ch_1"


def test_the_stored_context_revives_as_built() -> None:
    context = _context()
    assert revive(orjson.loads(to_json(context))) == context
