"""The dunning policy: which notice each group gets, at which stage, and when. Pure: no clock, no database.

Decisions taken where the contract leaves room (see docs in the module's functions):
- The send window includes its start and excludes its end: "08:00-20:00" sends from 08:00:00 to 19:59:59.
- Outside the window the whole account is deferred: every entry it would produce (send, skipped or
  superseded) is listed as `deferred` and nothing is recorded, so a later run decides all of it at once.
- A subscription cancelled after as_of is still live at as_of; charges attempted after as_of do not exist.
- A failed charge counts for a card group when it was made on that card for an owed invoice of one of the
  group's live subscriptions; past_due names the newest such failure within card_charge_failed.max_age_days.
- past_due and card_charge_failed speak for the group's live subscriptions that have owed invoices.
- service_cancelled shares one email per group even when cancellation days differ; it gives the earliest
  deletion date. pending_deletion splits by stage and deletion date, as the contract says.
- locale is the BCP 47 tag the email is written in: the account's own tag while the catalog used is for
  its language ("fr-FR" from the fr catalog, as in the contract's example), else the default locale's;
  catalog names the catalog used along the chain (pt-BR → pt → default); locale_fallback is true when
  the email is in another language than the account's (the default), as dunning.i18n.catalogs flags it.

Lifecycle notices (the contract's "Lifecycle notices"), where it leaves room:
- card_expiring counts a card with exp_month and exp_year that pays at least one live subscription, owed
  or not; its stages are local calendar dates like past_due's. It is superseded when card_charge_failed
  or past_due has status send for the group in the same plan: the stage that would have been sent is
  recorded superseded, lower stages not yet handled are skipped as usual. Its entry lists the live
  subscriptions the card pays, no invoices and empty amounts.
- balance_settled answers a card_charge_failed or past_due key whose email's status is sent (queued,
  unknown or failed emails may never have reached the customer: nothing to confirm), recorded at an as_of
  within [as_of - balance_settled.within_days, as_of] (a key recorded by a run dated after as_of has not
  happened yet, as rule 7 says of charges); the newest by recorded as_of, then by key, is the answered
  key. Its entry lists the group's live subscriptions, no invoices and empty amounts. It may go out
  together with card_expiring for the same card: they say different things.
- Pause: as_of before dunning_paused_until (exclusive: at that very moment the pause is over) lists every
  entry of the account as paused, inside or outside the send window; paused wins over deferred.
- Segments: the account's segment selects Settings.for_segment; a segment without a section gets the
  defaults (the warning, once per name, is the candidate selection's job: this module does no I/O).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from dunning.billing.contract import Account, Charge, Invoice, PaymentMethod, Subscription
from dunning.bounces.suppressions import normalize
from dunning.i18n.locales import negotiate, written_locale
from dunning.i18n.timezones import zone
from dunning.planning.planned import PlannedNotice, planned_notice
from dunning.settings import Settings
from dunning.vocabulary import (
    NOTICES,
    PlanStatus,
    balance_settled_key,
    card_charge_failed_key,
    card_expiring_key,
    dunning_key_prefixes,
    past_due_key,
    pending_deletion_key,
    service_cancelled_key,
)

__all__ = ["PlannedNotice", "plan", "plan_account", "reachable", "in_send_window", "choose_locale"]


@dataclass(slots=True)
class _Draft:
    """A decision before the account-wide facts (locale, recipients, window) are attached."""

    notice: str
    payment_method: str
    status: PlanStatus
    keys: list[str]
    invoices: list[Invoice]
    subscriptions: list[str]
    why: str
    stage: int | None = None
    final_stage: bool = False
    trigger: str | None = None
    episode_start: date | None = None
    disable_date: date | None = None
    deletion_date: date | None = None


@dataclass(slots=True)
class _Facts:
    """What one account looks like at as_of."""

    account: Account
    as_of: datetime
    local_now: datetime
    local_date: date
    handled: Container[str]
    settings: Settings
    sent: Mapping[str, datetime]  # this account's sent dunning keys: the as_of each was recorded at
    live: dict[str, Subscription]
    live_on: dict[str, list[str]]  # the live subscriptions each payment method pays, sorted
    owed: dict[str, list[Invoice]]
    charges: list[Charge]
    language: tuple[str, str, bool]  # choose_locale's answer for the account
    cc: tuple[str, ...]


def plan(accounts: Iterable[Account], handled: Container[str], as_of: datetime, settings: Settings, *,
         locales: frozenset[str], sent: Mapping[str, Mapping[str, datetime]] | None = None,
         suppressed: Container[str] = frozenset()) -> list[PlannedNotice]:
    """Every notice the accounts are due for at as_of, ordered by account, payment method, notice, stage.

    `sent` maps an account to its card_charge_failed and past_due keys whose email was sent, each with the
    as_of it was recorded at (what balance_settled answers); see dunning.ledger.key_history. An address in
    `suppressed` (normalized) is never mailed."""
    planned: list[PlannedNotice] = []
    for account in sorted(accounts, key=lambda a: a.id):
        mine = sent.get(account.id, {}) if sent else {}
        planned.extend(plan_account(account, handled, as_of, settings, locales=locales, sent=mine,
                                    suppressed=suppressed))
    return planned


def plan_account(account: Account, handled: Container[str], as_of: datetime, settings: Settings, *,
                 locales: frozenset[str], sent: Mapping[str, datetime] | None = None,
                 suppressed: Container[str] = frozenset()) -> list[PlannedNotice]:
    """The notices one account is due for at as_of (a key in `handled` is never planned; an address in
    `suppressed`, normalized, is never mailed)."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be an aware datetime")
    facts = _facts(account, handled, as_of, settings.for_segment(account.segment), sent or {}, locales)
    drafts: list[_Draft] = []
    for method in account.payment_methods:
        drafts.extend(_group_drafts(facts, method))
    drafts.extend(_cancellation_drafts(facts))
    paused_until = account.dunning_paused_until
    if paused_until is not None and as_of < paused_until:
        until = paused_until.astimezone(facts.local_now.tzinfo).strftime("%Y-%m-%d %H:%M")
        drafts = [replace(d, status="paused", why=f"dunning paused until {until} local; {d.why}") for d in drafts]
    elif not in_send_window(facts.local_now.time(), _window(facts.settings)):
        clock = facts.local_now.strftime("%H:%M")
        drafts = [replace(d, status="deferred", why=f"outside the send window ({clock} local); {d.why}")
                  for d in drafts]
    planned = [_finish(draft, facts) for draft in drafts]
    if suppressed:
        planned = [reachable(notice, suppressed) for notice in planned]
    return sorted(planned, key=_order) if len(planned) > 1 else planned


def reachable(notice: PlannedNotice, suppressed: Container[str]) -> PlannedNotice:
    """A notice to send without its suppressed recipients: a cc takes the place of a suppressed To, and with
    no recipient left the notice is `suppressed` (its keys recorded, never sent)."""
    if notice.status != "send":
        return notice
    to = tuple(a for a in notice.to if normalize(a) not in suppressed)
    cc = tuple(a for a in notice.cc if normalize(a) not in suppressed)
    if (to, cc) == (notice.to, notice.cc):
        return notice
    if not to and not cc:
        return replace(notice, status="suppressed",
                       why=f"every recipient's address is suppressed after bounces; {notice.why}")
    left_out = len(notice.to) + len(notice.cc) - len(to) - len(cc)
    why = f"{notice.why}; {left_out} suppressed address{'es' if left_out > 1 else ''} left out"
    return replace(notice, to=to or cc, cc=cc if to else (), why=why)


def _facts(account: Account, handled: Container[str], as_of: datetime, settings: Settings,
           sent: Mapping[str, datetime], locales: frozenset[str]) -> _Facts:
    local_now = as_of.astimezone(zone(account.timezone))
    live = {s.id: s for s in account.subscriptions if not _cancelled(s, as_of)}
    live_on: dict[str, list[str]] = defaultdict(list)
    for sub_id in sorted(live):
        live_on[live[sub_id].payment_method].append(sub_id)
    owed: dict[str, list[Invoice]] = defaultdict(list)
    for invoice in account.invoices:
        if invoice.owed:
            owed[invoice.subscription].append(invoice)
    return _Facts(account, as_of, local_now, local_now.date(), handled, settings, sent, live, live_on, owed,
                  [c for c in account.charges if c.attempted_at <= as_of],
                  choose_locale(account.locale, locales, settings.i18n.default_locale), tuple(sorted(set(account.cc))))


def _cancelled(subscription: Subscription, as_of: datetime) -> bool:
    """Cancelled at as_of: a cancellation dated later has not happened yet."""
    return (subscription.status == "cancelled" and subscription.cancelled_at is not None
            and subscription.cancelled_at <= as_of)


def _order(notice: PlannedNotice) -> tuple[str, str, int, int, date, tuple[str, ...]]:
    return (notice.account, notice.payment_method, NOTICES.index(notice.notice), notice.stage or 0,
            notice.deletion_date or date.min, notice.keys)


# card_charge_failed, past_due, card_expiring, balance_settled: a group is one account and one payment method.

def _group_drafts(facts: _Facts, method: PaymentMethod) -> list[_Draft]:
    live = facts.live_on.get(method.id, [])
    drafts = _dunning_drafts(facts, method, live)
    dunning = any(d.status == "send" for d in drafts)
    return drafts + _expiring_drafts(facts, method, live, superseded=dunning) + _settled_drafts(facts, method, live)


def _dunning_drafts(facts: _Facts, method: PaymentMethod, live: list[str]) -> list[_Draft]:
    subs = [s for s in live if facts.owed[s]]
    owed = [invoice for s in subs for invoice in facts.owed[s]]
    if not owed:
        return []  # paid means quiet
    failure = _latest_failure(facts, method, {i.id for i in owed}) if method.type == "card" else None
    drafts = _past_due_drafts(facts, method.id, owed, subs)
    sending = [d for d in drafts if d.status == "send"]
    if failure and sending:
        sending[0].trigger = failure.id  # past_due names the latest failure
    if failure:
        key = card_charge_failed_key(facts.account.id, method.id, failure.id)
        if key not in facts.handled:
            drafts.append(_card_draft(facts, method.id, failure, key, owed, subs, superseded=bool(sending)))
    return drafts


def _latest_failure(facts: _Facts, method: PaymentMethod, owed_ids: set[str]) -> Charge | None:
    """The newest failed charge on this card for an owed invoice, recent enough and not since paid."""
    oldest = facts.as_of - timedelta(days=facts.settings.card_charge_failed.max_age_days)
    succeeded: dict[str, datetime] = {}
    for charge in facts.charges:
        if charge.outcome == "succeeded" and charge.attempted_at > succeeded.get(charge.invoice, oldest):
            succeeded[charge.invoice] = charge.attempted_at
    failures = [c for c in facts.charges
                if c.outcome == "failed" and c.payment_method == method.id and c.invoice in owed_ids
                and c.attempted_at >= oldest and succeeded.get(c.invoice, oldest) <= c.attempted_at]
    return max(failures, key=lambda c: (c.attempted_at, c.id), default=None)


def _card_draft(facts: _Facts, method: str, failure: Charge, key: str, owed: list[Invoice],
                subs: list[str], *, superseded: bool) -> _Draft:
    when = failure.attempted_at.astimezone(facts.local_now.tzinfo).date().isoformat()
    code = failure.failure_code or "no code"
    why = (f"charge {failure.id} failed on {when} ({code}); past_due goes out instead" if superseded
           else f"charge {failure.id} failed on {when} ({code})")
    return _Draft("card_charge_failed", method, "superseded" if superseded else "send", [key], owed,
                  subs, why, trigger=failure.id)


def _past_due_drafts(facts: _Facts, method: str, owed: list[Invoice], subs: list[str]) -> list[_Draft]:
    """The highest due stage to send (unless handled), and every lower stage not yet handled, skipped."""
    policy, today = facts.settings.past_due, facts.local_date
    overdue = [invoice.due_date for invoice in owed if invoice.due_date < today]
    if not overdue:
        return []
    start = min(overdue)
    since = (today - start).days  # start + days <= today exactly when days <= since
    if since > policy.max_days_after_due:
        return []
    due = [k for k, days in enumerate(policy.days_after_due, 1) if days <= since]
    last = len(policy.days_after_due)
    drafts = []
    for stage in sorted(due, reverse=True):
        key = past_due_key(facts.account.id, method, start, stage)
        if key in facts.handled:
            continue
        top = stage == due[-1]
        why = (f"stage {stage} of the episode from {start.isoformat()}, due since "
               f"{(start + timedelta(days=policy.days_after_due[stage - 1])).isoformat()}" if top
               else f"stage {stage} came due together with stage {due[-1]}; never sent")
        disable = start + timedelta(days=policy.disable_after_days) if top and stage == last else None
        drafts.append(_Draft("past_due", method, "send" if top else "skipped", [key], owed, subs, why,
                             stage=stage, final_stage=stage == last, episode_start=start,
                             disable_date=disable))
    return drafts


def _expiring_drafts(facts: _Facts, method: PaymentMethod, live: list[str], *, superseded: bool) -> list[_Draft]:
    """The highest due card_expiring stage (sent, or superseded by dunning) and lower ones not handled, skipped."""
    if method.type != "card" or method.exp_month is None or method.exp_year is None or not live:
        return []
    stops = _first_day_after(method.exp_year, method.exp_month)  # E: the first day the card no longer works
    today, stages = facts.local_date, facts.settings.card_expiring.days_before
    until = (stops - today).days  # stops - days <= today exactly when until <= days
    due = [k for k, days in enumerate(stages, 1) if until <= days] if until > 0 else []
    drafts = []
    for stage in sorted(due, reverse=True):
        key = card_expiring_key(facts.account.id, method.id, method.exp_year, method.exp_month, stage)
        if key in facts.handled:
            continue
        if stage != due[-1]:
            status: PlanStatus = "skipped"
            why = f"stage {stage} came due together with stage {due[-1]}; never sent"
        else:
            status = "superseded" if superseded else "send"
            why = (f"card expires at the end of {method.exp_year:04d}-{method.exp_month:02d}; stage {stage} "
                   f"due since {(stops - timedelta(days=stages[stage - 1])).isoformat()}"
                   + ("; a dunning notice goes out instead" if superseded else ""))
        drafts.append(_Draft("card_expiring", method.id, status, [key], [], live, why, stage=stage,
                             final_stage=stage == len(stages)))
    return drafts


def _first_day_after(year: int, month: int) -> date:
    return date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)


def _settled_drafts(facts: _Facts, method: PaymentMethod, live: list[str]) -> list[_Draft]:
    """balance_settled for a settled group answering its newest dunning key sent within within_days."""
    if not live or any(facts.owed[s] for s in live):
        return []
    oldest = facts.as_of - timedelta(days=facts.settings.balance_settled.within_days)
    prefixes = dunning_key_prefixes(facts.account.id, method.id)
    answered = max(((when, key) for key, when in facts.sent.items()
                    if key.startswith(prefixes) and oldest <= when <= facts.as_of), default=None)
    if answered is None or balance_settled_key(answered[1]) in facts.handled:
        return []
    when, key = answered
    why = f"balance paid; confirms {key} (sent, recorded {when.astimezone(facts.local_now.tzinfo):%Y-%m-%d})"
    return [_Draft("balance_settled", method.id, "send", [balance_settled_key(key)], [], live, why)]


# service_cancelled and pending_deletion: per subscription, shared per group (and stage and deletion date).
_Group = tuple[str, str, PlanStatus, int | None, date | None]  # notice, payment method, status, stage, deletion

def _cancellation_drafts(facts: _Facts) -> list[_Draft]:
    grouped: dict[_Group, list[tuple[Subscription, date]]] = defaultdict(list)
    for sub in facts.account.subscriptions:
        if (sub.cancelled_at is None or not _cancelled(sub, facts.as_of) or sub.cancel_reason != "non_payment"
                or sub.data_deleted):
            continue
        deletion = (sub.cancelled_at.astimezone(facts.local_now.tzinfo).date()
                    + timedelta(days=facts.settings.deletion.days_after_cancel))
        if (facts.as_of - sub.cancelled_at <= timedelta(days=facts.settings.service_cancelled.max_age_days)
                and service_cancelled_key(sub.id) not in facts.handled):
            grouped[("service_cancelled", sub.payment_method, "send", None, None)].append((sub, deletion))
        for stage, status in _deletion_stages(facts, sub.id, deletion):
            grouped[("pending_deletion", sub.payment_method, status, stage, deletion)].append((sub, deletion))
    return [_cancellation_draft(facts, group, members) for group, members in grouped.items()]


def _deletion_stages(facts: _Facts, sub: str, deletion: date) -> list[tuple[int, PlanStatus]]:
    """The highest due pending_deletion stage to send and the lower ones to skip, leaving handled keys out."""
    today = facts.local_date
    if today > deletion:
        return []
    stages = facts.settings.pending_deletion.days_before_deletion
    until = (deletion - today).days
    due = [k for k, days in enumerate(stages, 1) if until <= days]
    return [(k, "send" if k == due[-1] else "skipped") for k in due
            if pending_deletion_key(sub, k) not in facts.handled]


def _cancellation_draft(facts: _Facts, group: _Group, members: list[tuple[Subscription, date]]) -> _Draft:
    notice, method, status, stage, _ = group
    subs = sorted(sub.id for sub, _ in members)
    deletion = min(day for _, day in members)
    invoices = [invoice for s in subs for invoice in facts.owed[s]]
    if notice == "service_cancelled":
        keys = [service_cancelled_key(s) for s in subs]
        why = f"cancelled for non-payment; data deleted on {deletion.isoformat()}"
    else:
        assert stage is not None  # every pending_deletion group has its stage
        keys = [pending_deletion_key(s, stage) for s in subs]
        last = len(facts.settings.pending_deletion.days_before_deletion)
        why = (f"stage {stage}: data deleted on {deletion.isoformat()}, {_in_days(deletion - facts.local_date)}"
               if status == "send" else f"stage {stage} came due together with a higher stage; never sent")
    return _Draft(notice, method, status, keys, invoices, subs, why, stage=stage,
                  final_stage=notice == "pending_deletion" and stage == last, deletion_date=deletion)


def _in_days(delta: timedelta) -> str:
    return {0: "today", 1: "in 1 day"}.get(delta.days, f"in {delta.days} days")


def _finish(draft: _Draft, facts: _Facts) -> PlannedNotice:
    account = facts.account
    catalog, locale, fallback = facts.language
    amounts: dict[str, Decimal] = {}
    for invoice in draft.invoices:
        amounts[invoice.currency] = amounts.get(invoice.currency, 0) + invoice.outstanding
    on_method = facts.live_on.get(draft.payment_method, ())
    deletion, local_date = draft.deletion_date, facts.local_date
    # In the order of PlannedNotice's fields (planned_notice builds it without the frozen __setattr__).
    return planned_notice(
        account.id, draft.notice, draft.stage, draft.payment_method, draft.status,
        dict(sorted(amounts.items())) if len(amounts) > 1 else amounts,
        _sorted([i.id for i in draft.invoices]), _sorted(draft.subscriptions), locale, catalog, account.locale,
        fallback, (account.email,), facts.cc, _sorted(draft.keys), local_date, draft.trigger, draft.episode_start,
        draft.disable_date, deletion, (deletion - local_date).days if deletion else None, draft.final_stage,
        len({*on_method, *draft.subscriptions}) > 1, draft.why)


def _sorted(items: list[str]) -> tuple[str, ...]:
    return tuple(items) if len(items) < 2 else tuple(sorted(items))  # most hold one item or none


_WINDOWS: dict[str, tuple[time, time]] = {}


def _window(settings: Settings) -> tuple[time, time]:
    """The send window, parsed once per distinct setting rather than once per account."""
    text = settings.policy.send_window
    window = _WINDOWS.get(text)
    if window is None:
        window = _WINDOWS[text] = settings.policy.window
    return window


def in_send_window(moment: time, window: tuple[time, time]) -> bool:
    """Whether a local wall-clock time is inside the send window (start included, end excluded)."""
    start, end = window
    return start <= moment < end


@lru_cache(maxsize=4096)  # a few dozen distinct locales across millions of accounts; Babel parsing is slow
def choose_locale(requested: str, available: frozenset[str], default: str) -> tuple[str, str, bool]:
    """(catalog in Babel form, BCP 47 tag the email is written in, whether another language is used)."""
    catalog = negotiate(requested, available, default)
    written = written_locale(requested, catalog)
    return catalog, (written or catalog).replace("_", "-"), written is None
