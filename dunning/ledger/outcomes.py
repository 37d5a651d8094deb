"""Outcomes: what became of each claimed email, written fenced, and the marks of data going out."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Text, bindparam, literal_column, null, select, update

from dunning import store
from dunning.ledger.writes import datetime_parameter
from dunning.store import Backend
from dunning.vocabulary import OUTCOMES, OutcomeStatus

__all__ = ["Result", "RecordCounts", "record", "try_record", "impatient_connection"]

emails = store.emails


@dataclass(frozen=True, slots=True)
class Result:
    """What one delivery attempt of a claimed email ended in."""

    email_id: int
    fence: int
    status: OutcomeStatus
    code: int | None = None
    reply: str = ""
    error: str = ""
    refused: dict[str, Any] | None = None
    delivered: tuple[str, ...] = ()
    primary_delivered: bool = False  # once retries give up, the email counts as sent if so


@dataclass(frozen=True, slots=True)
class RecordCounts:
    """How many outcomes of each status were written."""

    sent: int = 0
    retry: int = 0
    failed: int = 0
    unknown: int = 0
    fenced_out: int = 0  # outcomes of workers that no longer held the row: nothing written
    marked: int = 0  # emails marked as having their data go out (those of in_flight still held)


def record(bind: Engine | Connection, results: Sequence[Result], *, now: datetime, max_attempts: int,
           backoff_seconds: int, in_flight: Sequence[tuple[int, int]] = ()) -> RecordCounts:
    """Write each outcome whose fence still holds its row; retries back off, then fail at the cap. In the
    same transaction, mark the claims in_flight (email id, fence) as having their data go out now.
    bind: the engine, or a connection the caller holds for many such writes (used for nothing else)."""
    if not results and not in_flight:
        return RecordCounts()
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return record(conn, results, now=now, max_attempts=max_attempts, backoff_seconds=backoff_seconds,
                          in_flight=in_flight)
    counts = try_record(bind, results, now=now, max_attempts=max_attempts, backoff_seconds=backoff_seconds,
                        in_flight=in_flight)
    assert counts is not None  # on a connection that waits for the write lock, the write happens
    return counts


@contextmanager
def impatient_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for try_record whose writes give up at once, rather than wait, when another connection
    holds the database's write lock (a wait would stop a delivery process's whole event loop)."""
    with engine.connect() as conn, store.backend_of(conn).impatient(conn):
        yield conn


# The writer must hold the fence it claimed with. A row whose lease merely expired (unknown, not claimed
# again: same fence, lease_until kept) still takes its holder's late outcome, which replaces "we do not
# know" with what happened; once claimed again, released or resolved, the old holder is fenced out.
_RECORD = (update(emails)
           .where(emails.c.id == bindparam("email_id"), emails.c.fence == bindparam("fence"),
                  emails.c.status.in_([literal_column("'sending'"), literal_column("'unknown'")]),
                  emails.c.lease_until.is_not(None))
           .values(status=bindparam("status"), attempts=emails.c.attempts + literal_column("1"),
                   next_attempt_at=bindparam("next_at"), code=bindparam("code"), reply=bindparam("reply"),
                   error=bindparam("error"), refused=bindparam("refused"), delivered=bindparam("delivered"),
                   updated_at=bindparam("now"), lease_until=null()))
_IN_FLIGHT = (update(emails)
              .where(emails.c.id == bindparam("email_id"), emails.c.fence == bindparam("fence"),
                     emails.c.status == literal_column("'sending'"))
              .values(data_at=bindparam("now")))


@dataclass(frozen=True, slots=True)
class _Statements:
    """The outcomes' statements as the driver's own SQL, taking their parameters by name."""

    record: str
    in_flight: str
    attempts: str  # of the emails whose ids are the JSON array :ids


@cache
def _statements(backend: Backend) -> _Statements:
    """Compiled once per backend."""
    ids = backend.json_values(bindparam("ids", type_=Text), integers=True)
    attempts = select(emails.c.id, emails.c.attempts).where(emails.c.id.in_(ids))
    return _Statements(backend.driver_sql(_RECORD), backend.driver_sql(_IN_FLIGHT), backend.driver_sql(attempts))


def try_record(conn: Connection, results: Sequence[Result], *, now: datetime, max_attempts: int,
               backoff_seconds: int, in_flight: Sequence[tuple[int, int]] = ()) -> RecordCounts | None:
    """record, on a connection the caller holds; None, with nothing written, when the connection is an
    impatient one and another holds the write lock right now (the caller tries again later)."""
    if not results and not in_flight:
        return RecordCounts()
    # A delivery process writes once per email or so (the in-flight marks): run by the driver itself,
    # such a write costs a fraction of what it costs through SQLAlchemy's statement execution.
    backend, driver = store.backend_of(conn), conn.connection.driver_connection
    assert driver is not None  # a connection the caller holds is open
    stamp = datetime_parameter(conn.dialect)
    cursor = driver.cursor()
    try:
        rows = _outcome_rows(backend, cursor, results, now, max_attempts, backoff_seconds, stamp)
        # A mark whose email has its outcome in the same write (its envelope was refused) is left out: it
        # would find no row to mark, and one statement must not write a row twice.
        finishing = {(result.email_id, result.fence) for result in results}
        marks = [mark for mark in in_flight if mark not in finishing]
        written = backend.record_at_once(cursor, rows, marks, stamp(now))
        if written is None:
            if not backend.try_begin_write(cursor):
                return None
            written = _record(_statements(backend), cursor, rows, marks, stamp(now))
            driver.commit()
    except BaseException:
        driver.rollback()
        raise
    finally:
        cursor.close()
    by_status, marked = written
    counts = {status: by_status.get(status, 0) for status in OUTCOMES}
    return RecordCounts(**counts, fenced_out=len(results) - sum(counts.values()), marked=marked)


def _record(statements: _Statements, cursor: Any, rows: list[dict[str, object]], marks: Sequence[tuple[int, int]],
            bound_now: object) -> tuple[dict[str, int], int]:
    """The write as a statement per status of outcome and one for the marks, in the transaction begun: how
    many outcomes of each status and how many marks held."""
    counts: dict[str, int] = {}
    for status in OUTCOMES:  # one batch per status, so each rowcount says how many of them held
        batch = [row for row in rows if row["status"] == status]
        if batch:
            cursor.executemany(statements.record, batch)
            counts[status] = cursor.rowcount
    marked = 0
    if marks:
        cursor.executemany(statements.in_flight, [{"now": bound_now, "email_id": email_id, "fence": fence}
                                                  for email_id, fence in marks])
        marked = cursor.rowcount
    return counts, marked


def _outcome_rows(backend: Backend, cursor: Any, results: Sequence[Result], now: datetime, max_attempts: int,
                  backoff_seconds: int, stamp: Callable[[datetime | None], object]) -> list[dict[str, object]]:
    """The parameters of each outcome's fenced write, in the order of the emails' ids (the order rows lock in)."""
    # Only a retry's outcome depends on how many attempts came before (back off, or give up); the others
    # are written without reading the row first, which most writes of a run are spared.
    retries = [result.email_id for result in results if result.status == "retry"]
    attempts: dict[int, int] = {}
    if retries:
        cursor.execute(_statements(backend).attempts, {"ids": orjson.dumps(retries).decode()})
        attempts = dict(cursor.fetchall())
    bound_now = stamp(now)
    return [_outcome(result, attempts.get(result.email_id, 0) + 1, now, max_attempts, backoff_seconds, stamp,
                     bound_now)
            for result in sorted(results, key=lambda r: r.email_id)
            if result.status != "retry" or result.email_id in attempts]


def _outcome(result: Result, attempts: int, now: datetime, max_attempts: int, backoff_seconds: int,
             stamp: Callable[[datetime | None], object], bound_now: object) -> dict[str, object]:
    """The parameters of _RECORD for one result (datetimes bound with stamp; now already is)."""
    status, next_at, error = result.status, None, result.error or None
    if status not in OUTCOMES:
        raise ValueError(f"not an outcome: {status!r}")
    if status == "retry" and attempts >= max_attempts and result.primary_delivered:
        status = "sent"  # only secondary recipients were still waiting: they are given up on
    elif status == "retry" and attempts >= max_attempts:
        status, error = "failed", f"gave up after {attempts} attempts: {result.error or result.reply}"
    elif status == "retry":
        next_at = now + timedelta(seconds=backoff_seconds * 2 ** (attempts - 1))
    return {"status": status, "next_at": stamp(next_at) if next_at else None, "code": result.code,
            "reply": result.reply or None, "error": error,
            "refused": orjson.dumps(result.refused).decode() if result.refused else None,
            "delivered": orjson.dumps(result.delivered).decode() if result.delivered else None,
            "now": bound_now, "email_id": result.email_id, "fence": result.fence}
