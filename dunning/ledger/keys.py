"""The ledger's keys as the planner reads them: every key held, and the dunning keys whose email was sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from dunning import store
from dunning.vocabulary import DUNNING_NOTICES

__all__ = ["KeyHistory", "key_history"]

emails, notices = store.emails, store.notices


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """What the planner needs from the ledger for a batch of accounts, read in one query."""

    handled: set[str]  # every key held
    # account → {card_charge_failed or past_due key whose email was sent: the as_of it was recorded at}
    sent: dict[str, dict[str, datetime]]


def key_history(conn: Connection, account_ids: Sequence[str]) -> KeyHistory:
    """Every key held for these accounts, and their dunning keys whose email was sent, with when."""
    if not account_ids:
        return KeyHistory(set(), {})
    query = (select(notices.c.key, notices.c.account_id, notices.c.notice, notices.c.as_of, emails.c.status)
             .outerjoin(emails, emails.c.id == notices.c.email_id)
             .where(store.among(conn, notices.c.account_id, account_ids)))
    handled: set[str] = set()
    sent: dict[str, dict[str, datetime]] = {}
    for key, account, notice, as_of, status in conn.execute(query):
        handled.add(key)
        if status == "sent" and notice in DUNNING_NOTICES and as_of is not None:
            sent.setdefault(account, {})[key] = as_of
    return KeyHistory(handled, sent)
