"""Properties of the policy over generated billing state and sequences of runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dunning.billing.contract import Account
from dunning.planning.policy import plan
from dunning.settings import Settings

from .builders import LOCALES, bank, card, model

BASE = datetime(2026, 11, 1, tzinfo=UTC)
ZONES = ("Europe/Paris", "Pacific/Auckland", "America/Los_Angeles", "Asia/Tokyo", "UTC", "Pacific/Kiritimati",
         "Pacific/Pago_Pago", "Australia/Lord_Howe")
CURRENCIES = {"EUR": 2, "JPY": 0, "USD": 2}
POLICY = Settings()
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _money(units: int, currency: str) -> str:
    decimals = CURRENCIES[currency]
    return f"{units // 10 ** decimals}.{units % 10 ** decimals:0{decimals}d}" if decimals else str(units)


@st.composite
def accounts(draw, account_id: str = "acct_1") -> Account:
    """A small account whose dates fall around BASE: every notice can come due in the runs that follow."""
    methods = [(card if draw(st.booleans()) else bank)(f"{account_id}_pm_{i}") for i in range(draw(st.integers(1, 2)))]
    subs = []
    for i in range(draw(st.integers(1, 3))):
        data = {"id": f"{account_id}_sub_{i}", "name": f"Plan {i}", "status": "active",
                "payment_method": draw(st.sampled_from(methods))["id"]}
        if draw(st.booleans()):
            data.update(status="cancelled", cancel_reason=draw(st.sampled_from(["non_payment", "customer_request"])),
                        data_deleted=draw(st.booleans()) and draw(st.booleans()),
                        cancelled_at=_rfc3339(BASE + timedelta(hours=draw(st.integers(-24 * 95, 24 * 30)))))
        subs.append(data)
    invoices = []
    for i in range(draw(st.integers(0, 4))):
        currency = draw(st.sampled_from(sorted(CURRENCIES)))
        total = draw(st.integers(1, 100_000))
        paid = draw(st.sampled_from([0, total, total // 2]))
        due = BASE.date() + timedelta(days=draw(st.integers(-70, 30)))
        invoices.append({"id": f"{account_id}_inv_{i}", "subscription": draw(st.sampled_from(subs))["id"],
                         "currency": currency, "total": _money(total, currency), "amount_paid": _money(paid, currency),
                         "issued_date": (due - timedelta(days=14)).isoformat(), "due_date": due.isoformat(),
                         "status": draw(st.sampled_from(["open", "open", "paid", "void"]))})
    charges = []
    for i in range(draw(st.integers(0, 4)) if invoices else 0):
        charges.append({"id": f"{account_id}_ch_{i}", "invoice": draw(st.sampled_from(invoices))["id"],
                        "payment_method": draw(st.sampled_from(methods))["id"],
                        "attempted_at": _rfc3339(BASE + timedelta(
                            minutes=draw(st.integers(-60 * 24 * 10, 60 * 24 * 30)))),
                        "outcome": draw(st.sampled_from(["failed", "failed", "succeeded"])),
                        "failure_code": "card_declined"})
    return model({"id": account_id, "name": "Acme", "email": f"billing@{account_id}.example",
                  "locale": draw(st.sampled_from(["fr-FR", "pt-BR", "ja-JP", "en-US"])),
                  "timezone": draw(st.sampled_from(ZONES)), "payment_methods": methods, "subscriptions": subs,
                  "invoices": invoices, "charges": charges})


def _several(draw_count: int = 3):
    return st.lists(st.integers(0, 9), min_size=1, max_size=draw_count, unique=True).flatmap(
        lambda ids: st.tuples(*(accounts(f"acct_{i}") for i in ids)).map(list))


runs = st.lists(st.integers(1, 60), min_size=1, max_size=25)  # hours between successive runs


@EXAMPLES
@given(state=_several(), start=st.integers(0, 24 * 40), steps=runs)
def test_a_key_is_never_planned_twice_across_runs(state, start, steps):
    """Applying each run's non-deferred keys to the ledger, no key is ever handled twice, even within a run."""
    handled: set[str] = set()
    as_of = BASE + timedelta(hours=start)
    for step in steps:
        as_of += timedelta(hours=step)
        keys = [k for p in plan(state, handled, as_of, POLICY, locales=LOCALES) if p.status != "deferred"
                for k in p.keys]
        assert len(keys) == len(set(keys))
        assert not handled & set(keys)
        handled |= set(keys)


@EXAMPLES
@given(state=_several(), start=st.integers(0, 24 * 40), steps=runs)
def test_a_sequence_never_goes_back_to_a_lower_stage(state, start, steps):
    """Once a stage of a past_due episode or a pending_deletion is handled, no lower stage is ever sent."""
    highest: dict[str, int] = {}
    handled: set[str] = set()
    as_of = BASE + timedelta(hours=start)
    for step in steps:
        as_of += timedelta(hours=step)
        planned = [p for p in plan(state, handled, as_of, POLICY, locales=LOCALES) if p.status != "deferred"]
        for p in planned:
            for key in p.keys:
                if p.stage is not None:
                    sequence = key.rsplit(":", 1)[0]
                    assert p.status != "send" or p.stage > highest.get(sequence, 0)
        for p in planned:
            for key in p.keys:
                if p.stage is not None:
                    sequence = key.rsplit(":", 1)[0]
                    highest[sequence] = max(highest.get(sequence, 0), p.stage)
            handled.update(p.keys)


@EXAMPLES
@given(state=_several(), hours=st.integers(0, 24 * 70))
def test_a_group_with_zero_balance_never_gets_card_or_past_due(state, hours):
    """card_charge_failed and past_due list only owed invoices of live subscriptions of their group."""
    as_of = BASE + timedelta(hours=hours)
    by_id = {a.id: a for a in state}
    for p in plan(state, set(), as_of, POLICY, locales=LOCALES):
        if p.notice not in ("card_charge_failed", "past_due"):
            continue
        account = by_id[p.account]
        subs = {s.id: s for s in account.subscriptions}
        listed = [i for i in account.invoices if i.id in p.invoices]
        assert listed and p.amounts and all(amount > 0 for amount in p.amounts.values())
        for inv in listed:
            owner = subs[inv.subscription]
            assert inv.owed and owner.payment_method == p.payment_method
            assert owner.status != "cancelled" or owner.cancelled_at > as_of


@EXAMPLES
@given(state=_several(), hours=st.integers(0, 24 * 70))
def test_applying_the_same_plan_twice_adds_nothing(state, hours):
    """After a run's keys are recorded, planning again at the same moment finds nothing more to handle."""
    as_of = BASE + timedelta(hours=hours)
    first = plan(state, set(), as_of, POLICY, locales=LOCALES)
    handled = {k for p in first if p.status != "deferred" for k in p.keys}
    again = plan(state, handled, as_of, POLICY, locales=LOCALES)
    assert [p for p in again if p.status != "deferred"] == []
    assert again == [p for p in first if p.status == "deferred"]


@EXAMPLES
@given(state=_several(4), hours=st.integers(0, 24 * 70), data=st.data())
def test_the_plan_does_not_depend_on_the_order_of_accounts(state, hours, data):
    """Shuffling the accounts (and their children) gives the same plan."""
    as_of = BASE + timedelta(hours=hours)
    shuffled = [a.model_copy(update={name: data.draw(st.permutations(getattr(a, name)))
                                     for name in ("payment_methods", "subscriptions", "invoices", "charges")})
                for a in data.draw(st.permutations(state))]
    assert plan(shuffled, set(), as_of, POLICY, locales=LOCALES) == plan(state, set(), as_of, POLICY,
                                                                         locales=LOCALES)
