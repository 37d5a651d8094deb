"""Claims: due emails taken under a lease and a fence, leases kept alive, given back, or expired."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from operator import itemgetter
from typing import Any, Literal, cast

import orjson
from sqlalchemy import ColumnElement, Connection, Engine, ScalarSelect, Text, Update, bindparam, select, update

from dunning import store
from dunning.ledger.writes import datetime_parameter, transaction

__all__ = ["Claim", "claim", "extend_leases", "unclaim", "lapsed_workers", "outbox_due", "expire_leases", "requeue"]

log = logging.getLogger("dunning.ledger")
emails, email_payloads = store.emails, store.email_payloads


@dataclass(frozen=True, slots=True)
class Claim:
    """One email a worker holds: its fence, and what it needs to render and send it."""

    email_id: int
    fence: int
    attempts: int
    message_id: str
    payload_json: str
    account: str
    notice: str
    payment_method: str | None = None
    stage: int | None = None
    locale: str = ""
    delivered: tuple[str, ...] = ()  # recipients that accepted it in an earlier attempt
    refused_json: str | None = None

    @property
    def refused(self) -> dict[str, list[Any]]:
        """Recipients refused in earlier attempts, with code and text."""
        return orjson.loads(self.refused_json) if self.refused_json else {}

    @property
    def payload(self) -> dict[str, Any]:
        """The payload as enqueued. Parsed on each use: a claimed batch holds its payloads as text, a
        fraction of the memory, until each email is sent."""
        return cast(dict[str, Any], orjson.loads(self.payload_json))


def claim(engine: Engine, *, worker: str, limit: int, now: datetime, lease_seconds: int) -> list[Claim]:
    """Take up to `limit` due emails for this worker under a lease; committed before it returns."""
    # Statements compiled once, given to the driver as they are: no statement cache looked up, no parameter
    # processed per execution.
    statements, stamp = _statements(store.backend_of(engine)), datetime_parameter(engine.dialect)
    parameters = {"worker": worker, "limit": limit, "now": stamp(now),
                  "until": stamp(now + timedelta(seconds=lease_seconds))}
    with engine.connect() as conn:
        with transaction(conn):
            rows = _driver_rows(conn, statements.claim, parameters)
        if not rows:
            return []
        # Read once the claim is committed, so the write lock is held no longer than the claim needs;
        # a payload never changes after its email is enqueued.
        payloads = dict(_driver_rows(conn, statements.payloads, {"ids": orjson.dumps([row[0] for row in rows])
                                                                           .decode()}))
    rows.sort(key=itemgetter(0))
    return [Claim(email_id, fence, attempts, message_id, payloads[email_id], account, notice, payment_method,
                  stage, locale, tuple(orjson.loads(delivered)) if delivered else (), refused)
            for (email_id, fence, attempts, message_id, account, notice, payment_method, stage, locale,
                 delivered, refused) in rows]


@dataclass(frozen=True, slots=True)
class _Statements:
    """The claim's statements as the driver's own SQL, taking their parameters by name."""

    claim: str
    payloads: str  # of the emails whose ids are the JSON array :ids


@cache
def _statements(backend: store.Backend) -> _Statements:
    """Compiled once per backend."""
    ids = backend.json_values(bindparam("ids", type_=Text), integers=True)
    payloads = select(email_payloads.c.email_id, email_payloads.c.payload).where(email_payloads.c.email_id.in_(ids))
    return _Statements(backend.driver_sql(backend.claim_statement()), backend.driver_sql(payloads))


def _driver_rows(conn: Connection, sql: str, parameters: dict[str, object]) -> list[Any]:
    """The rows of one statement given to the driver as it is (in the connection's transaction, if one is open)."""
    return list(conn.exec_driver_sql(sql, parameters).all())


def extend_leases(engine: Engine, claims: Sequence[Claim], *, now: datetime, lease_seconds: int) -> int:
    """Push the lease of claims this worker still holds; how many it still held."""
    if not claims:
        return 0
    statement = (update(emails).where(emails.c.id == bindparam("b_id"), emails.c.fence == bindparam("b_fence"),
                                      emails.c.status == "sending")
                 .values(lease_until=now + timedelta(seconds=lease_seconds)))
    with transaction(engine) as conn:
        return conn.execute(statement, [{"b_id": c.email_id, "b_fence": c.fence} for c in claims]).rowcount


def unclaim(engine: Engine, claims: Sequence[Claim], *, now: datetime) -> int:
    """Put claimed emails that were never handed to a server back in the queue, without using an attempt."""
    rows = [{"b_id": c.email_id, "b_fence": c.fence, "b_now": now} for c in claims]
    if not rows:
        return 0
    with transaction(engine) as conn:
        return conn.execute(_UNCLAIM, rows).rowcount


_UNCLAIM = (update(emails)
            .where(emails.c.id == bindparam("b_id"), emails.c.fence == bindparam("b_fence"),
                   emails.c.status == "sending")
            .values(status="queued", lease_until=None, worker=None, updated_at=bindparam("b_now")))


def lapsed_workers(engine: Engine, *, now: datetime) -> list[str]:
    """The workers holding emails whose lease has run out (their flight logs are replayed first)."""
    with engine.connect() as conn:
        return sorted(conn.execute(select(emails.c.worker).distinct().where(
            emails.c.status == "sending", emails.c.lease_until < now, emails.c.worker.is_not(None))).scalars())


def outbox_due(engine: Engine, *, now: datetime, unknown_policy: Literal["hold", "resend"]) -> bool:
    """Whether the outbox holds anything a run would claim, expire or send again now (read only)."""
    claimable = (emails.c.status == "queued") | ((emails.c.status == "retry") & (emails.c.next_attempt_at <= now))
    lapsed = (emails.c.status == "sending") & (emails.c.lease_until < now)
    due = claimable | lapsed
    if unknown_policy == "resend":
        due = due | ((emails.c.status == "unknown") & emails.c.resent.is_(False))
    with engine.connect() as conn:
        return conn.execute(select(select(emails.c.id).where(due).exists())).scalar_one()


def expire_leases(engine: Engine, *, now: datetime, unknown_policy: Literal["hold", "resend"]) -> int:
    """Sending rows whose lease ran out: back to the queue if their data never went out, else unknown
    (how many); under resend, unknown rows go back once."""
    lapsed = (emails.c.status == "sending") & (emails.c.lease_until < now)
    with transaction(engine) as conn:
        returned = conn.execute(
            update(emails).where(emails.c.status == "sending", emails.c.id.in_(_unlocked(
                lapsed & emails.c.data_at.is_(None))))
            .values(status="queued", lease_until=None, worker=None, updated_at=now)).rowcount
        if returned:
            log.info("%d emails claimed by a worker that stopped before sending them went back to the queue",
                     returned)
        expired = conn.execute(
            update(emails).where(emails.c.status == "sending", emails.c.id.in_(_unlocked(
                lapsed & emails.c.data_at.is_not(None))))
            .values(status="unknown", updated_at=now,
                    error="lease expired while its data was going out (the worker stopped or stalled)")
        ).rowcount
        once = _unlocked((emails.c.status == "unknown") & emails.c.resent.is_(False))
        requeued = conn.execute(requeue(now).where(emails.c.id.in_(once))).rowcount \
            if unknown_policy == "resend" else 0
    if expired or requeued:
        log.info("%d expired leases became unknown; %d unknown emails queued to be sent again",
                 expired, requeued)
    return expired


def _unlocked(condition: ColumnElement[bool]) -> ScalarSelect[int]:
    # A row a worker is recording right now is skipped, not waited for: it is about to get its outcome,
    # and waiting on rows locked in another order could deadlock. (With a single writer, nothing is locked.)
    return select(emails.c.id).where(condition).with_for_update(skip_locked=True).scalar_subquery()


def requeue(now: datetime) -> Update:
    """Unknown emails back to queued, once: the next run sends them again with the same Message-ID."""
    return (update(emails).where(emails.c.status == "unknown")
            .values(status="queued", resent=True, lease_until=None, next_attempt_at=None, updated_at=now))
