"""Outcomes per recipient: whom an attempt is addressed to, and what its outcome makes of the email.

An email counts as sent only once its primary recipients (To) accepted it. Recipients refused with a
4xx are tried again, alone, with the same Message-ID; those refused with a 5xx are recorded as failed
and not tried again; those that accepted it are never sent it twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dunning.delivery.transport import Outcome
from dunning.vocabulary import OutcomeStatus

__all__ = ["Settled", "addressees", "settle", "unaddressed"]

Refusals = Mapping[str, Sequence[object]]  # recipient -> (code, text)


@dataclass(frozen=True, slots=True)
class Settled:
    """What one attempt makes of an email: its status, everyone who has it, and every refusal so far."""

    status: OutcomeStatus
    delivered: tuple[str, ...]
    refused: dict[str, list[object]]
    primary_delivered: bool


def _permanent(refusal: Sequence[object]) -> bool:
    code = refusal[0]
    return isinstance(code, int) and 500 <= code < 600


def unaddressed(to: Sequence[str], delivered: Sequence[str]) -> OutcomeStatus:
    """What an email with no recipient left to try is: sent if its To addresses have it, else failed."""
    return "sent" if all(r in delivered for r in to) else "failed"


def addressees(to: Sequence[str], cc: Sequence[str], delivered: Sequence[str], refused: Refusals) -> list[str]:
    """The recipients this attempt goes to: neither delivered already nor refused for good."""
    done = set(delivered) | {r for r, refusal in refused.items() if _permanent(refusal)}
    return [r for r in dict.fromkeys([*to, *cc]) if r not in done]


def settle(outcome: Outcome, to: Sequence[str], delivered: Sequence[str], refused: Refusals) -> Settled:
    """The email's status after this attempt, given what earlier attempts achieved."""
    now_refused = {r: list(v) for r, v in refused.items()}
    # Refusals count only from a transaction that ran its course (sent or refused): on a session lost
    # or out of step, a reply may have answered another command.
    for recipient, refusal in outcome.refused.items() if outcome.status in ("sent", "failed") else ():
        now_refused[recipient] = list(refusal)
    for recipient in outcome.accepted:
        now_refused.pop(recipient, None)
    has = tuple(dict.fromkeys([*delivered, *outcome.accepted]))
    primary_delivered = all(r in has for r in to)
    status = outcome.status
    if status == "sent":
        if any(r in now_refused and _permanent(now_refused[r]) for r in to if r not in has):
            status = "failed"
        elif any(r in outcome.refused and not _permanent(outcome.refused[r]) for r in outcome.refused):
            status = "retry"  # some recipients are still to get it; only they are tried again
        elif not primary_delivered:
            status = "retry"
    return Settled(status, has, now_refused, primary_delivered)
