"""Reconcile: what the outbox holds that a run cannot settle alone, and the operator's answers to it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import Engine, func, select, update

from dunning import store
from dunning.ledger.claims import requeue
from dunning.ledger.writes import transaction
from dunning.vocabulary import EMAIL_STATUSES, KEY_OUTCOMES

__all__ = ["UnknownEmail", "list_unknown", "RefusedRecipient", "list_refused", "mark_sent", "release", "summary",
           "QueueState", "queue_state"]

emails, notices = store.emails, store.notices


@dataclass(frozen=True, slots=True)
class UnknownEmail:
    """An email whose delivery outcome is unknown, with the keys it speaks for."""

    email_id: int
    account: str
    notice: str
    keys: tuple[str, ...]
    message_id: str
    since: datetime
    worker: str | None = None
    error: str | None = None
    resent: bool = False


def list_unknown(engine: Engine) -> list[UnknownEmail]:
    """Emails whose delivery outcome is unknown, oldest first, with the keys they speak for."""
    query = (select(emails.c.id, emails.c.account_id, emails.c.notice, emails.c.message_id,
                    emails.c.updated_at, emails.c.worker, emails.c.error, emails.c.resent, notices.c.key)
             .outerjoin(notices, notices.c.email_id == emails.c.id)
             .where(emails.c.status == "unknown").order_by(emails.c.updated_at, emails.c.id, notices.c.key))
    found: dict[int, UnknownEmail] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            held = found.get(row.id)
            keys = (held.keys if held else ()) + ((row.key,) if row.key else ())
            found[row.id] = UnknownEmail(row.id, row.account_id, row.notice, keys, row.message_id,
                                         row.updated_at, row.worker, row.error, row.resent)
    return list(found.values())


@dataclass(frozen=True, slots=True)
class RefusedRecipient:
    """A recipient a server refused for good (5xx), and the email it was refused for."""

    email_id: int
    account: str
    notice: str
    status: str
    recipient: str
    code: int
    reply: str


def list_refused(engine: Engine) -> list[RefusedRecipient]:
    """Recipients refused for good (5xx) by the server, per email, oldest email first."""
    query = (select(emails.c.id, emails.c.account_id, emails.c.notice, emails.c.status, emails.c.refused)
             .where(emails.c.refused.is_not(None)).order_by(emails.c.id))
    found = []
    with engine.connect() as conn:
        for row in conn.execute(query):
            for recipient, (code, reply) in sorted(orjson.loads(row.refused).items()):
                if isinstance(code, int) and 500 <= code < 600:
                    found.append(RefusedRecipient(row.id, row.account_id, row.notice, row.status, recipient,
                                                  code, reply))
    return found


def mark_sent(engine: Engine, email_ids: Iterable[int], *, now: datetime) -> int:
    """Unknown emails an operator knows were delivered become sent; how many changed."""
    statement = (update(emails).where(emails.c.id.in_(list(email_ids)), emails.c.status == "unknown")
                 .values(status="sent", lease_until=None, updated_at=now))
    with transaction(engine) as conn:
        return conn.execute(statement).rowcount


def release(engine: Engine, email_ids: Iterable[int], *, now: datetime) -> int:
    """Unknown emails go back to queued, same Message-ID, to be sent by the next run; how many changed."""
    statement = requeue(now).where(emails.c.id.in_(list(email_ids)))
    with transaction(engine) as conn:
        return conn.execute(statement).rowcount


def summary(engine: Engine) -> dict[str, int]:
    """Emails per status and keys recorded without an email (skipped, superseded), for reports."""
    counts = dict.fromkeys(EMAIL_STATUSES + KEY_OUTCOMES, 0)
    with engine.connect() as conn:
        counts.update(conn.execute(select(emails.c.status, func.count()).group_by(emails.c.status)).all())
        counts.update(conn.execute(select(notices.c.outcome, func.count())
                                   .where(notices.c.outcome.in_(KEY_OUTCOMES))
                                   .group_by(notices.c.outcome)).all())
    return counts


@dataclass(frozen=True, slots=True)
class QueueState:
    """What the outbox still holds that no run can send now."""

    waiting: int = 0  # retries due later than now
    held: int = 0     # unknown outcomes that wait for `dunning reconcile`


def queue_state(engine: Engine, *, now: datetime) -> QueueState:
    """What the outbox still holds that no run can send now: retries due later, unknown emails held."""
    waiting = (emails.c.status == "retry") & (emails.c.next_attempt_at > now)
    held = emails.c.status == "unknown"
    query = select(func.count().filter(waiting), func.count().filter(held)).where(waiting | held)
    with engine.connect() as conn:
        row = conn.execute(query).one()
    return QueueState(waiting=row[0], held=row[1])
