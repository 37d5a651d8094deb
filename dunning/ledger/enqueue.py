"""Enqueue: planned notices into the outbox and their keys into the ledger, a key held never twice."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, Engine, Integer, Table, bindparam, delete, insert, literal
from sqlalchemy.sql.dml import Insert

from dunning import store
from dunning.ledger.writes import transaction
from dunning.store import Backend
from dunning.store.backend import Upsert
from dunning.vocabulary import KEY_OUTCOMES

__all__ = ["OutboxEntry", "EnqueueCounts", "enqueue"]

emails, notices, email_payloads = store.emails, store.notices, store.email_payloads


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One planned notice as the pipeline hands it over: an email to send, or keys to record."""

    account: str
    payment_method: str
    notice: str
    stage: int | None
    locale: str
    status: Literal["send", "skipped", "superseded", "suppressed"]
    keys: tuple[str, ...]
    message_id: str | None = None
    payload: dict[str, Any] | str | None = None  # JSON-able, or its JSON text


@dataclass(frozen=True, slots=True)
class EnqueueCounts:
    """What one enqueue added."""

    emails: int = 0      # email rows added to the outbox
    keys: int = 0        # keys newly recorded in the ledger
    held: int = 0        # entries that added nothing: every key was already held
    conflicts: int = 0   # emails dropped because only some of their keys were held


def enqueue(engine: Engine, entries: Iterable[OutboxEntry], *, now: datetime,
            as_of: datetime | None = None) -> EnqueueCounts:
    """Record a batch of planned notices in one transaction; a key the ledger already holds adds nothing.

    Keys are recorded at as_of, the moment the plan was made for (default: now)."""
    entries = list(entries)
    if not entries:
        return EnqueueCounts()
    sends = [entry for entry in entries if entry.status == "send"]
    payloads = [_payload_text(entry.payload) for entry in sends]
    with transaction(engine) as conn:
        emailed = list(zip(sends, _insert_emails(conn, sends, now), strict=True))
        owned: list[tuple[OutboxEntry, int | None]] = [*emailed]
        owned += [(entry, None) for entry in entries if entry.status != "send"]
        rows = [_key_row(entry, key, email_id) for entry, email_id in owned for key in entry.keys]
        got = _insert_keys(conn, rows, now, as_of or now)
        every_key_free = len(got) == len(rows)  # what a run meets, unless another one planned the same keys
        # An email goes out only if every key it speaks for is its own: a key another run holds
        # must not be mentioned twice; its free keys stay free and the next run plans them again.
        dropped = [] if every_key_free else [(entry, email_id) for entry, email_id in emailed
                                             if not all((key, email_id) in got for key in entry.keys)]
        released = {(key, email_id) for entry, email_id in dropped for key in entry.keys} & got
        _drop(conn, [email_id for _, email_id in dropped], [key for key, _ in released])
        gone = {email_id for _, email_id in dropped}
        _insert_payloads(conn, [(email_id, payload) for (_, email_id), payload in zip(emailed, payloads, strict=True)
                                if email_id not in gone])
    if every_key_free:
        return EnqueueCounts(emails=len(sends), keys=len(got))
    return EnqueueCounts(
        emails=len(sends) - len(dropped), keys=len(got) - len(released),
        held=sum(not any((key, email_id) in got for key in entry.keys) for entry, email_id in owned),
        conflicts=sum(any((key, email_id) in got for key in entry.keys) for entry, email_id in dropped))


def _payload_text(payload: dict[str, Any] | str | None) -> str:
    # The pipeline hands over payloads already encoded, to serialize each once.
    return payload if isinstance(payload, str) else json.dumps(payload or {}, ensure_ascii=False)


_EMAIL_COLUMNS = ("account_id", "payment_method_id", "notice", "stage", "locale", "message_id")
_KEY_COLUMNS = ("key", "account_id", "notice", "outcome", "email_id")


# Each statement is one INSERT … SELECT of every row, the rows passed as a single JSON array parameter:
# far cheaper than multi-row VALUES, whose placeholders the driver parses one by one; one statement also
# takes the rows' key locks in their order.
@cache
def _emails_insert(backend: Backend) -> Insert:
    constants = {"status": literal("queued"), "attempts": literal(0), "fence": literal(0), "resent": literal(False),
                 "created_at": _now(), "updated_at": _now()}
    return _from_rows(backend, emails, _EMAIL_COLUMNS, constants).returning(emails.c.message_id, emails.c.id)


@cache
def _keys_insert(backend: Backend, returning: bool) -> Insert:
    constants = {"created_at": _now(), "as_of": bindparam("as_of", type_=store.UtcDateTime())}
    statement = _from_rows(backend, notices, _KEY_COLUMNS, constants).on_conflict_do_nothing(index_elements=["key"])
    if returning:
        return statement.returning(notices.c.key, notices.c.email_id)
    # SQLAlchemy keeps an INSERT's row count only when asked: without this, PostgreSQL's count reads -1
    return statement.execution_options(preserve_rowcount=True)


@cache
def _payloads_insert(backend: Backend) -> str:
    """For the driver's executemany: a payload is long JSON text, which one JSON array of the rows would
    escape, and the database then parse and unescape again."""
    return backend.driver_sql(insert(email_payloads).values(email_id=bindparam("email_id"),
                                                            payload=bindparam("payload")))


def _now() -> Any:
    return bindparam("now", type_=store.UtcDateTime())


def _from_rows(backend: Backend, table: Table, columns: tuple[str, ...], constants: dict[str, Any]) -> Upsert:
    integers = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, Integer)]
    rows = backend.json_rows(len(columns), integers)
    return backend.insert(table).from_select([*columns, *constants], rows.select(*constants.values()))


def _insert_emails(conn: Connection, sends: list[OutboxEntry], now: datetime) -> list[int]:
    """Insert the email rows; their ids, in the order of `sends`."""
    if not sends:
        return []
    rows = [(entry.account, entry.payment_method, entry.notice, entry.stage, entry.locale,
             _required_message_id(entry)) for entry in sends]
    if len({row[5] for row in rows}) != len(rows):
        raise ValueError("two emails of one batch share a Message-ID; each email needs its own")
    result = conn.execute(_emails_insert(store.backend_of(conn)), {"rows": _json(rows), "now": now})
    ids: dict[str, int] = dict(result.all())  # matched by Message-ID: RETURNING does not promise an order
    return [ids[row[5]] for row in rows]


def _insert_keys(conn: Connection, rows: list[tuple[Any, ...]], now: datetime,
                 as_of: datetime) -> set[tuple[str, int | None]]:
    """Insert keys, skipping those already held; the (key, email id) pairs that were inserted."""
    if not rows:
        return set()
    # Sorted, so overlapping runs wait on each other's keys in one order and never deadlock.
    rows = sorted(rows, key=lambda row: row[0])  # stable: of two entries naming a key, the first wins
    parameters = {"rows": _json(rows), "now": now, "as_of": as_of}
    backend = store.backend_of(conn)
    # Every key is free unless another run planned it too: then the count alone tells, and the insert is
    # undone and made again, returning the keys it got (returning every row costs more than the savepoint).
    savepoint = conn.begin_nested()
    if conn.execute(_keys_insert(backend, False), parameters).rowcount == len(rows):
        savepoint.commit()
        return {(row[0], row[4]) for row in rows}
    savepoint.rollback()
    result = conn.execute(_keys_insert(backend, True), parameters)
    return {(key, email_id) for key, email_id in result.all()}


def _insert_payloads(conn: Connection, rows: list[tuple[int, str]]) -> None:
    if not rows:
        return
    driver = conn.connection.driver_connection
    assert driver is not None  # the transaction's connection is open
    cursor = driver.cursor()
    try:
        cursor.executemany(_payloads_insert(store.backend_of(conn)),
                           [{"email_id": email_id, "payload": payload} for email_id, payload in rows])
    finally:
        cursor.close()


def _json(rows: Sequence[tuple[Any, ...]]) -> str:
    return orjson.dumps(rows).decode()


def _drop(conn: Connection, email_ids: list[int], keys: list[str]) -> None:
    if keys:
        conn.execute(delete(notices).where(notices.c.key.in_(keys)))
    if email_ids:
        conn.execute(delete(emails).where(emails.c.id.in_(email_ids)))


_OUTCOMES = frozenset(("email", *KEY_OUTCOMES))


def _key_row(entry: OutboxEntry, key: str, email_id: int | None) -> tuple[str, str, str, str, int | None]:
    outcome = "email" if entry.status == "send" else entry.status
    if outcome not in _OUTCOMES:
        raise ValueError(f"cannot enqueue a notice with status {entry.status!r}")
    return (key, entry.account, entry.notice, outcome, email_id)


def _required_message_id(entry: OutboxEntry) -> str:
    if not entry.message_id or not entry.keys:
        raise ValueError(f"an email to send needs keys and a Message-ID ({entry.notice} for {entry.account})")
    return entry.message_id
