"""The project's one home for names: the notices, the ledger keys that hold them, and every status.

The ledger, the transport, the planner and the renderer all speak these words; each list is written
here once and imported everywhere else.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

__all__ = ["NOTICES", "Notice", "PLAN_STATUSES", "PlanStatus", "KEY_OUTCOMES", "EMAIL_STATUSES", "EmailStatus",
           "OUTCOMES", "OutcomeStatus", "BOUNCE_KINDS", "BounceKind", "SUPPRESSION_REASONS", "SuppressionReason",
           "card_charge_failed_key", "past_due_key", "service_cancelled_key", "pending_deletion_key",
           "DUNNING_NOTICES", "dunning_key_prefixes", "card_expiring_key_parts", "card_expiring_key",
           "BALANCE_SETTLED_PREFIX", "balance_settled_key"]

# In the order a plan lists them for one group.
NOTICES = ("card_charge_failed", "past_due", "card_expiring", "balance_settled", "service_cancelled",
           "pending_deletion")
Notice = Literal["card_charge_failed", "past_due", "card_expiring", "balance_settled", "service_cancelled",
                 "pending_deletion"]
# The notices of a dunning episode: a sent one of these is what balance_settled answers.
DUNNING_NOTICES: tuple[Notice, ...] = ("card_charge_failed", "past_due")

# What the planner decides for each notice (`dunning plan`'s status column).
# paused: the account's dunning is paused; like deferred, nothing is recorded.
# suppressed: every recipient's address is suppressed after bounces (its keys are recorded).
PLAN_STATUSES = ("send", "deferred", "paused", "skipped", "superseded", "suppressed")
PlanStatus = Literal["send", "deferred", "paused", "skipped", "superseded", "suppressed"]
# Plan statuses the ledger records as a key's outcome without an email.
KEY_OUTCOMES = ("skipped", "superseded", "suppressed")

# What a bounce says of an address: hard suppresses at once, soft after bounces.soft_limit of them.
BOUNCE_KINDS = ("hard", "soft")
BounceKind = Literal["hard", "soft"]
# Why an address is suppressed.
SUPPRESSION_REASONS = ("hard_bounce", "soft_bounces", "manual")
SuppressionReason = Literal["hard_bounce", "soft_bounces", "manual"]

# An email's life in the outbox, and the outcomes a delivery attempt can end in.
EMAIL_STATUSES = ("queued", "sending", "sent", "retry", "failed", "unknown")
EmailStatus = Literal["queued", "sending", "sent", "retry", "failed", "unknown"]
OUTCOMES = ("sent", "retry", "failed", "unknown")
OutcomeStatus = Literal["sent", "retry", "failed", "unknown"]


def _group_key(notice: Notice, account: str, payment_method: str) -> str:
    """How the key of a notice to one group (account and payment method) starts."""
    return f"{notice}:{account}:{payment_method}:"


def dunning_key_prefixes(account: str, payment_method: str) -> tuple[str, ...]:
    """How the keys of the group's dunning notices (card_charge_failed, past_due) start."""
    return tuple(_group_key(notice, account, payment_method) for notice in DUNNING_NOTICES)


def card_charge_failed_key(account: str, payment_method: str, charge: str) -> str:
    """The key of the card_charge_failed notice for one failed charge."""
    return _group_key("card_charge_failed", account, payment_method) + charge


def past_due_key(account: str, payment_method: str, episode_start: date, stage: int) -> str:
    """The key of one past_due stage of one dunning episode."""
    return _group_key("past_due", account, payment_method) + f"{episode_start.isoformat()}:{stage}"


def service_cancelled_key(subscription: str) -> str:
    """The key of the service_cancelled notice of one subscription."""
    return f"service_cancelled:{subscription}"


def pending_deletion_key(subscription: str, stage: int) -> str:
    """The key of one pending_deletion stage of one subscription."""
    return f"pending_deletion:{subscription}:{stage}"


def card_expiring_key_parts(exp_year: int, exp_month: int, stage: int) -> tuple[str, str, str]:
    """The key of a card_expiring stage around its account and payment method: the key is
    parts[0] + account + parts[1] + payment_method + parts[2] (what a query builds it from)."""
    return "card_expiring:", ":", f":{exp_year:04d}-{exp_month:02d}:{stage}"


def card_expiring_key(account: str, payment_method: str, exp_year: int, exp_month: int, stage: int) -> str:
    """The key of one card_expiring stage for one card and its expiry month."""
    before, between, after = card_expiring_key_parts(exp_year, exp_month, stage)
    return before + account + between + payment_method + after


BALANCE_SETTLED_PREFIX = "balance_settled:"  # then the key it answers


def balance_settled_key(answered_key: str) -> str:
    """The key of the balance_settled notice that answers one sent card_charge_failed or past_due key."""
    return BALANCE_SETTLED_PREFIX + answered_key
