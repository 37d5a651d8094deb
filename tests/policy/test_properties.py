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
    methods = [card(f"{account_id}_pm_{i}", expires=_month(draw(st.integers(-1, 3)))) if draw(st.booleans())
               else bank(f"{account_id}_pm_{i}") for i in range(draw(st.integers(1, 2)))]
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
    extra = {}
    if draw(st.integers(0, 3)) == 0:
        extra["dunning_paused_until"] = _rfc3339(BASE + timedelta(hours=draw(st.integers(-24 * 5, 24 * 40))))
    return model({"id": account_id, "name": "Acme", "email": f"billing@{account_id.replace('_', '-')}.example",
                  "locale": draw(st.sampled_from(["fr-FR", "pt-BR", "ja-JP", "en-US"])),
                  "timezone": draw(st.sampled_from(ZONES)), "payment_methods": methods, "subscriptions": subs,
                  "invoices": invoices, "charges": charges, **extra})


def _month(offset: int) -> str:
    """The month `offset` months after BASE's, "YYYY-MM"."""
    index = BASE.year * 12 + BASE.month - 1 + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


QUIET = ("deferred", "paused")  # statuses that record nothing


def _run(state: list[Account], handled: set[str], sent: dict[str, dict[str, datetime]], as_of: datetime) -> list:
    """One run: its plan, with what it records applied to the ledger (every dunning email taken as sent)."""
    planned = plan(state, handled, as_of, POLICY, locales=LOCALES, sent=sent)
    for p in planned:
        if p.status not in QUIET:
            handled.update(p.keys)
        if p.status == "send" and p.notice in ("card_charge_failed", "past_due"):
            sent.setdefault(p.account, {}).update(dict.fromkeys(p.keys, as_of))
    return planned


def _several(draw_count: int = 3):
    return st.lists(st.integers(0, 9), min_size=1, max_size=draw_count, unique=True).flatmap(
        lambda ids: st.tuples(*(accounts(f"acct_{i}") for i in ids)).map(list))


runs = st.lists(st.integers(1, 60), min_size=1, max_size=25)  # hours between successive runs


@EXAMPLES
@given(state=_several(), start=st.integers(0, 24 * 40), steps=runs)
def test_a_key_is_never_planned_twice_across_runs(state, start, steps):
    """Applying each run's recorded keys to the ledger, no key is ever handled twice, even within a run."""
    handled: set[str] = set()
    sent: dict[str, dict[str, datetime]] = {}
    as_of = BASE + timedelta(hours=start)
    for step in steps:
        as_of += timedelta(hours=step)
        before = set(handled)
        keys = [k for p in _run(state, handled, sent, as_of) if p.status not in QUIET for k in p.keys]
        assert len(keys) == len(set(keys))
        assert not before & set(keys)


@EXAMPLES
@given(state=_several(), start=st.integers(0, 24 * 40), steps=runs)
def test_a_paused_account_sends_and_records_nothing(state, start, steps):
    """While as_of is before an account's dunning_paused_until, every entry of it is paused; never otherwise."""
    handled: set[str] = set()
    sent: dict[str, dict[str, datetime]] = {}
    as_of = BASE + timedelta(hours=start)
    pauses = {a.id: a.dunning_paused_until for a in state}
    for step in steps:
        as_of += timedelta(hours=step)
        for p in _run(state, handled, sent, as_of):
            until = pauses[p.account]
            assert (p.status == "paused") == (until is not None and as_of < until)


def _paid(account: Account) -> Account:
    """The account once every invoice is paid in full."""
    paid = [i.model_copy(update={"status": "paid", "amount_paid": i.total}) for i in account.invoices]
    return account.model_copy(update={"invoices": paid})


@EXAMPLES
@given(state=_several(), start=st.integers(0, 24 * 40), steps=runs, pay_at=st.integers(0, 25))
def test_a_settled_group_gets_no_failure_notice_and_one_confirmation(state, start, steps, pay_at):
    """Paying everything at some run: a group confirmed as settled gets no card_charge_failed or past_due in
    that run, and one confirmation per answered key."""
    handled: set[str] = set()
    sent: dict[str, dict[str, datetime]] = {}
    confirmed: list[str] = []
    as_of = BASE + timedelta(hours=start)
    for index, step in enumerate(steps):
        as_of += timedelta(hours=step)
        planned = _run([_paid(a) for a in state] if index >= pay_at else state, handled, sent, as_of)
        confirmed += [k for p in planned if p.notice == "balance_settled" and p.status == "send" for k in p.keys]
        assert len(confirmed) == len(set(confirmed))
        settled = {(p.account, p.payment_method) for p in planned if p.notice == "balance_settled"}
        assert not [p for p in planned if p.notice in ("card_charge_failed", "past_due")
                    and (p.account, p.payment_method) in settled]


@EXAMPLES
@given(state=_several(), start=st.integers(0, 24 * 40), steps=runs)
def test_a_sequence_never_goes_back_to_a_lower_stage(state, start, steps):
    """Once a stage of a past_due episode, a pending_deletion or a card_expiring is handled, no lower one is sent."""
    highest: dict[str, int] = {}
    handled: set[str] = set()
    sent: dict[str, dict[str, datetime]] = {}
    as_of = BASE + timedelta(hours=start)
    for step in steps:
        as_of += timedelta(hours=step)
        planned = [p for p in _run(state, handled, sent, as_of) if p.status not in QUIET]
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
    handled = {k for p in first if p.status not in QUIET for k in p.keys}
    again = plan(state, handled, as_of, POLICY, locales=LOCALES)
    assert [p for p in again if p.status not in QUIET] == []
    assert again == [p for p in first if p.status in QUIET]


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
