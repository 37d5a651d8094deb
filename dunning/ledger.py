"""The notice ledger and outbox: enqueue, claim, record, reconcile. Never twice lives here."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import orjson
from sqlalchemy import Connection, Dialect, Engine, bindparam, delete, func, select, text, update

from dunning import store
from dunning.vocabulary import DUNNING_NOTICES, EMAIL_STATUSES, KEY_OUTCOMES, OUTCOMES, OutcomeStatus

__all__ = ["OutboxEntry", "EnqueueCounts", "Claim", "Result", "RecordCounts", "UnknownEmail", "handled_keys",
           "KeyHistory", "key_history", "enqueue",
           "claim", "extend_leases", "record", "impatient_connection", "try_record", "unclaim", "lapsed_workers",
           "expire_leases",
           "list_unknown", "mark_sent", "release", "summary"]

log = logging.getLogger(__name__)
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
    payload: dict | str | None = None  # JSON-able, or its JSON text


@dataclass(frozen=True, slots=True)
class EnqueueCounts:
    emails: int = 0      # email rows added to the outbox
    keys: int = 0        # keys newly recorded in the ledger
    held: int = 0        # entries that added nothing: every key was already held
    conflicts: int = 0   # emails dropped because only some of their keys were held


@dataclass(frozen=True, slots=True)
class Claim:
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
    def refused(self) -> dict[str, list]:
        """Recipients refused in earlier attempts, with code and text."""
        return orjson.loads(self.refused_json) if self.refused_json else {}

    @property
    def payload(self) -> dict:
        """The payload as enqueued. Parsed on each use: a claimed batch holds its payloads as text, a
        fraction of the memory, until each email is sent."""
        return orjson.loads(self.payload_json)


@dataclass(frozen=True, slots=True)
class Result:
    email_id: int
    fence: int
    status: OutcomeStatus
    code: int | None = None
    reply: str = ""
    error: str = ""
    refused: dict | None = None
    delivered: tuple[str, ...] = ()
    primary_delivered: bool = False  # once retries give up, the email counts as sent if so


@dataclass(frozen=True, slots=True)
class RecordCounts:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    unknown: int = 0
    fenced_out: int = 0  # outcomes of workers that no longer held the row: nothing written


@dataclass(frozen=True, slots=True)
class UnknownEmail:
    email_id: int
    account: str
    notice: str
    keys: tuple[str, ...]
    message_id: str
    since: datetime
    worker: str | None = None
    error: str | None = None
    resent: bool = False


def handled_keys(conn: Connection, account_ids: Sequence[str]) -> set[str]:
    """Every notice key the ledger holds for these accounts."""
    if not account_ids:
        return set()
    query = select(notices.c.key).where(store.among(conn, notices.c.account_id, account_ids))
    return set(conn.execute(query).scalars())


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


# --- enqueue -------------------------------------------------------------------------------------------

def enqueue(engine: Engine, entries: Iterable[OutboxEntry], *, now: datetime,
            as_of: datetime | None = None) -> EnqueueCounts:
    """Record a batch of planned notices in one transaction; a key the ledger already holds adds nothing.

    Keys are recorded at as_of, the moment the plan was made for (default: now)."""
    entries = list(entries)
    if not entries:
        return EnqueueCounts()
    sends = [entry for entry in entries if entry.status == "send"]
    payloads = [_payload_text(entry.payload) for entry in sends]
    with _transaction(engine) as conn:
        emailed = list(zip(sends, _insert_emails(conn, sends, now), strict=True))
        owned: list[tuple[OutboxEntry, int | None]] = [*emailed]
        owned += [(entry, None) for entry in entries if entry.status != "send"]
        got = _insert_keys(conn, [_key_row(entry, key, email_id) for entry, email_id in owned
                                  for key in entry.keys], now, as_of or now)
        # An email goes out only if every key it speaks for is its own: a key another run holds
        # must not be mentioned twice; its free keys stay free and the next run plans them again.
        dropped = [(entry, email_id) for entry, email_id in emailed
                   if not all((key, email_id) in got for key in entry.keys)]
        released = {(key, email_id) for entry, email_id in dropped for key in entry.keys} & got
        _drop(conn, [email_id for _, email_id in dropped], [key for key, _ in released])
        gone = {email_id for _, email_id in dropped}
        _insert_payloads(conn, [(email_id, payload) for (_, email_id), payload in zip(emailed, payloads, strict=True)
                                if email_id not in gone])
    return EnqueueCounts(
        emails=len(sends) - len(dropped), keys=len(got) - len(released),
        held=sum(not any((key, email_id) in got for key in entry.keys) for entry, email_id in owned),
        conflicts=sum(any((key, email_id) in got for key in entry.keys) for entry, email_id in dropped))


_EMAIL_COLUMNS = ("account_id", "payment_method_id", "notice", "stage", "locale", "message_id")
_KEY_COLUMNS = ("key", "account_id", "notice", "outcome", "email_id")
_INTEGER_COLUMNS = ("stage", "email_id")  # the rest are text


def _payload_text(payload: dict | str | None) -> str:
    # The pipeline hands over payloads already encoded, to serialize each once.
    return payload if isinstance(payload, str) else json.dumps(payload or {}, ensure_ascii=False)


def _insert_emails(conn: Connection, sends: list[OutboxEntry], now: datetime) -> list[int]:
    """Insert the email rows; their ids, in the order of `sends`."""
    if not sends:
        return []
    rows = [(entry.account, entry.payment_method, entry.notice, entry.stage, entry.locale,
             _required_message_id(entry)) for entry in sends]
    if len({row[5] for row in rows}) != len(rows):
        raise ValueError("two emails of one batch share a Message-ID; each email needs its own")
    constants = {"status": "'queued'", "attempts": "0", "fence": "0", "resent": "false",
                 "created_at": ":now", "updated_at": ":now"}
    result = _bulk_insert(conn, "emails", _EMAIL_COLUMNS, rows, constants, now, "RETURNING message_id, id")
    ids = dict(result.all())  # matched by Message-ID: RETURNING does not promise an order
    return [ids[row[5]] for row in rows]


def _insert_keys(conn: Connection, rows: list[tuple], now: datetime,
                 as_of: datetime) -> set[tuple[str, int | None]]:
    """Insert keys, skipping those already held; the (key, email id) pairs that were inserted."""
    if not rows:
        return set()
    # Sorted, so overlapping runs wait on each other's keys in one order and never deadlock.
    rows = sorted(rows, key=lambda row: row[0])  # stable: of two entries naming a key, the first wins
    result = _bulk_insert(conn, "notices", _KEY_COLUMNS, rows, {"created_at": ":now", "as_of": ":as_of"}, now,
                          'ON CONFLICT ("key") DO NOTHING RETURNING "key", email_id', as_of=as_of)
    return {(key, email_id) for key, email_id in result}


def _insert_payloads(conn: Connection, rows: list[tuple[int, str]]) -> None:
    if rows:
        _bulk_insert(conn, "email_payloads", ("email_id", "payload"), rows, {}, None, "")


def _bulk_insert(conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple],
                 constants: dict[str, str], now: datetime | None, tail: str, *, as_of: datetime | None = None):
    """One INSERT … SELECT of every row, the rows passed as a single JSON array parameter."""
    # Far faster than multi-row VALUES, whose thousands of placeholders the driver parses one by one;
    # one statement also takes the rows' key locks in their order.
    names = ", ".join(f'"{name}"' for name in columns + tuple(constants))
    if conn.dialect.name == "postgresql":
        picks = [f"CAST(v->>{i} AS integer)" if name in _INTEGER_COLUMNS else f"v->>{i}"
                 for i, name in enumerate(columns)]
        source = (f"SELECT {', '.join(picks + list(constants.values()))} "
                  "FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS u(v, n) ORDER BY n")
    else:
        picks = [f"json_extract(value, '$[{i}]')" for i in range(len(columns))]
        # "WHERE true" lets SQLite's parser tell ON CONFLICT from a join's ON.
        source = f"SELECT {', '.join(picks + list(constants.values()))} FROM json_each(:rows) WHERE true"
    statement = text(f"INSERT INTO {table} ({names}) {source} {tail}")
    parameters: dict[str, object] = {"rows": orjson.dumps(rows).decode()}
    if now is not None:
        statement = statement.bindparams(bindparam("now", type_=store.UtcDateTime()))
        parameters["now"] = now
    if as_of is not None:
        statement = statement.bindparams(bindparam("as_of", type_=store.UtcDateTime()))
        parameters["as_of"] = as_of
    return conn.execute(statement, parameters)


def _drop(conn: Connection, email_ids: list[int], keys: list[str]) -> None:
    if keys:
        conn.execute(delete(notices).where(notices.c.key.in_(keys)))
    if email_ids:
        conn.execute(delete(emails).where(emails.c.id.in_(email_ids)))


def _key_row(entry: OutboxEntry, key: str, email_id: int | None) -> tuple:
    outcome = "email" if entry.status == "send" else entry.status
    if outcome not in ("email", *KEY_OUTCOMES):
        raise ValueError(f"cannot enqueue a notice with status {entry.status!r}")
    return (key, entry.account, entry.notice, outcome, email_id)


def _required_message_id(entry: OutboxEntry) -> str:
    if not entry.message_id or not entry.keys:
        raise ValueError(f"an email to send needs keys and a Message-ID ({entry.notice} for {entry.account})")
    return entry.message_id


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """One write transaction, on a connection of its own or on one the caller holds (not in a transaction);
    on SQLite it takes the write lock up front, so writers queue, never interleave."""
    if isinstance(bind, Engine):
        with bind.connect() as conn, _transaction(conn):
            yield conn
        return
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        yield bind
    except BaseException:
        bind.rollback()
        raise
    bind.commit()


# --- claim and record ----------------------------------------------------------------------------------

_DUE = ("SELECT id FROM emails {hint} WHERE " + store.CLAIMABLE
        + " AND (status = 'queued' OR next_attempt_at <= :now) ORDER BY id LIMIT :limit {lock}")
_TAKE = ("UPDATE emails SET status = 'sending', fence = fence + 1, worker = :worker, lease_until = :until, "
         "data_at = NULL, updated_at = :now WHERE id IN ({due}) {check} RETURNING id, fence, attempts, "
         "message_id, account_id, notice, payment_method_id, stage, locale, delivered, refused")
_CLAIM = {
    # Rows another worker is claiming are skipped, not waited for: workers split the queue between them.
    "postgresql": "WITH due AS MATERIALIZED (" + _DUE.format(hint="", lock="FOR UPDATE SKIP LOCKED") + ") "
                  + _TAKE.format(due="SELECT id FROM due", check="AND " + store.CLAIMABLE),
    # BEGIN IMMEDIATE already made this the only writer; the hint keeps SQLite off a sort of the queue.
    "sqlite": _TAKE.format(due=_DUE.format(hint="INDEXED BY ix_emails_claimable", lock=""), check=""),
}


def claim(engine: Engine, *, worker: str, limit: int, now: datetime, lease_seconds: int) -> list[Claim]:
    """Take up to `limit` due emails for this worker under a lease; committed before it returns."""
    statement = text(_CLAIM[engine.dialect.name]).bindparams(
        bindparam("now", type_=store.UtcDateTime()), bindparam("until", type_=store.UtcDateTime()))
    with _transaction(engine) as conn:
        rows = conn.execute(statement, {"worker": worker, "limit": limit, "now": now,
                                        "until": now + timedelta(seconds=lease_seconds)}).all()
    if not rows:
        return []
    # Read once the claim is committed, so the write lock is held no longer than the claim needs;
    # a payload never changes after its email is enqueued.
    payloads = _payloads(engine, [row[0] for row in rows])
    return sorted((Claim(email_id, fence, attempts, message_id, payloads[email_id], account,
                         notice, payment_method, stage, locale,
                         tuple(orjson.loads(delivered)) if delivered else (), refused)
                   for (email_id, fence, attempts, message_id, account, notice, payment_method, stage, locale,
                        delivered, refused) in rows), key=lambda claimed: claimed.email_id)


def _payloads(engine: Engine, email_ids: list[int]) -> dict[int, str]:
    with engine.connect() as conn:
        query = select(email_payloads.c.email_id, email_payloads.c.payload).where(
            store.among(conn, email_payloads.c.email_id, email_ids))
        return dict(conn.execute(query).all())


def extend_leases(engine: Engine, claims: Sequence[Claim], *, now: datetime, lease_seconds: int) -> int:
    """Push the lease of claims this worker still holds; how many it still held."""
    if not claims:
        return 0
    statement = (update(emails).where(emails.c.id == bindparam("b_id"), emails.c.fence == bindparam("b_fence"),
                                      emails.c.status == "sending")
                 .values(lease_until=now + timedelta(seconds=lease_seconds)))
    with _transaction(engine) as conn:
        return conn.execute(statement, [{"b_id": c.email_id, "b_fence": c.fence} for c in claims]).rowcount


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
    """A connection for try_record: on SQLite, a write on it gives up at once when another connection holds
    the write lock (SQLite's own wait sleeps 1, 2, 5, 10… ms between tries, and the thread with it: for a
    delivery process, its whole event loop, while another process holds the lock for a few dozen µs)."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            yield conn
            return
        driver = conn.connection.driver_connection  # as try_record writes: SQLAlchemy opens no transaction
        assert driver is not None
        driver.execute("PRAGMA busy_timeout = 0")
        try:
            yield conn
        finally:
            driver.execute(f"PRAGMA busy_timeout = {store.SQLITE_BUSY_TIMEOUT_MS}")


def try_record(conn: Connection, results: Sequence[Result], *, now: datetime, max_attempts: int,
               backoff_seconds: int, in_flight: Sequence[tuple[int, int]] = ()) -> RecordCounts | None:
    """record, on a connection the caller holds; None, with nothing written, when the connection is an
    impatient one and another holds SQLite's write lock right now (the caller tries again later)."""
    if not results and not in_flight:
        return RecordCounts()
    # A delivery process writes once per email or so (the in-flight marks): run by the driver itself,
    # such a write costs a fraction of what it costs through SQLAlchemy's statement execution.
    dialect, driver = conn.dialect, conn.connection.driver_connection
    assert driver is not None  # a connection the caller holds is open
    stamp = _datetime_parameter(dialect)
    cursor = driver.cursor()
    try:
        if dialect.name == "sqlite":
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    return None
                raise
        counts = _record(cursor, dialect, results, now, max_attempts, backoff_seconds, stamp) \
            if results else RecordCounts()
        if in_flight:
            bound_now = stamp(now)
            cursor.executemany(_driver_sql(dialect, _IN_FLIGHT),
                               [(bound_now, email_id, fence) for email_id, fence in in_flight])
        driver.commit()
    except BaseException:
        driver.rollback()
        raise
    finally:
        cursor.close()
    return counts


def _record(cursor, dialect: Dialect, results: Sequence[Result], now: datetime, max_attempts: int,
            backoff_seconds: int, stamp: Callable[[datetime | None], object]) -> RecordCounts:
    counts = dict.fromkeys(OUTCOMES, 0)
    # Only a retry's outcome depends on how many attempts came before (back off, or give up); the others
    # are written without reading the row first, which most writes of a run are spared.
    retries = [result.email_id for result in results if result.status == "retry"]
    attempts: dict[int, int] = {}
    if retries:
        places = ", ".join("?" * len(retries))
        cursor.execute(_driver_sql(dialect, f"SELECT id, attempts FROM emails WHERE id IN ({places})"), retries)
        attempts = dict(cursor.fetchall())
    bound_now = stamp(now)
    rows = [_outcome(result, attempts.get(result.email_id, 0) + 1, now, max_attempts, backoff_seconds, stamp,
                     bound_now)
            for result in sorted(results, key=lambda r: r.email_id)
            if result.status != "retry" or result.email_id in attempts]
    statement = _driver_sql(dialect, _RECORD)
    for status in counts:  # one batch per status, so each rowcount says how many of them held
        batch = [row for row in rows if row[0] == status]
        if batch:
            cursor.executemany(statement, batch)
            counts[status] = cursor.rowcount
    return RecordCounts(**counts, fenced_out=len(results) - sum(counts.values()))


def mark_in_flight(engine: Engine, claims: Sequence[tuple[int, int]], *, now: datetime) -> int:
    """Record that these claimed emails' data is about to go out (email id, fence); how many still held."""
    if not claims:
        return 0
    with _transaction(engine) as conn:
        stamp = _datetime_parameter(conn.dialect)(now)
        return conn.exec_driver_sql(_driver_sql(conn.dialect, _IN_FLIGHT),
                                    [(stamp, email_id, fence) for email_id, fence in claims]).rowcount


_IN_FLIGHT = "UPDATE emails SET data_at = ? WHERE id = ? AND fence = ? AND status = 'sending'"


def unclaim(engine: Engine, claims: Sequence[Claim], *, now: datetime) -> int:
    """Put claimed emails that were never handed to a server back in the queue, without using an attempt."""
    rows = [{"b_id": c.email_id, "b_fence": c.fence, "b_now": now} for c in claims]
    if not rows:
        return 0
    with _transaction(engine) as conn:
        return conn.execute(_UNCLAIM, rows).rowcount


_UNCLAIM = (update(emails)
            .where(emails.c.id == bindparam("b_id"), emails.c.fence == bindparam("b_fence"),
                   emails.c.status == "sending")
            .values(status="queued", lease_until=None, worker=None, updated_at=bindparam("b_now")))


# The writer must hold the fence it claimed with. A row whose lease merely expired (unknown, not claimed
# again: same fence, lease_until kept) still takes its holder's late outcome, which replaces "we do not
# know" with what happened; once claimed again, released or resolved, the old holder is fenced out.
# Plain SQL with positional parameters, run by the driver itself: SQLAlchemy's processing of each
# row's parameters cost as much as the writes.
_RECORD = ("UPDATE emails SET status = ?, attempts = attempts + 1, next_attempt_at = ?, code = ?, reply = ?, "
           "error = ?, refused = ?, delivered = ?, updated_at = ?, lease_until = NULL "
           "WHERE id = ? AND fence = ? AND status IN ('sending', 'unknown') AND lease_until IS NOT NULL")


def _outcome(result: Result, attempts: int, now: datetime, max_attempts: int, backoff_seconds: int,
             stamp: Callable[[datetime | None], object], bound_now: object) -> tuple:
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
    return (status, stamp(next_at) if next_at else None, result.code, result.reply or None, error,
            json.dumps(result.refused) if result.refused else None,
            json.dumps(list(result.delivered)) if result.delivered else None, bound_now, result.email_id, result.fence)


def _datetime_parameter(dialect: Dialect) -> Callable[[datetime | None], object]:
    """What the driver is given for a UtcDateTime value, as SQLAlchemy would bind it on this database."""
    process = store.UtcDateTime().bind_processor(dialect)
    return process if process is not None else lambda value: value


def _driver_sql(dialect: Dialect, statement: str) -> str:
    """A statement written with `?` placeholders, in the driver's own parameter style."""
    return statement if dialect.paramstyle == "qmark" else statement.replace("?", "%s")


# --- leases and reconciliation -------------------------------------------------------------------------

def lapsed_workers(engine: Engine, *, now: datetime) -> list[str]:
    """The workers holding emails whose lease has run out (their flight logs are replayed first)."""
    with engine.connect() as conn:
        return sorted(conn.execute(select(emails.c.worker).distinct().where(
            emails.c.status == "sending", emails.c.lease_until < now, emails.c.worker.is_not(None))).scalars())


def expire_leases(engine: Engine, *, now: datetime, unknown_policy: Literal["hold", "resend"]) -> int:
    """Sending rows whose lease ran out: back to the queue if their data never went out, else unknown
    (how many); under resend, unknown rows go back once."""
    lapsed = _unlocked((emails.c.status == "sending") & (emails.c.lease_until < now) & emails.c.data_at.is_(None))
    in_doubt = _unlocked((emails.c.status == "sending") & (emails.c.lease_until < now) & emails.c.data_at.is_not(None))
    with _transaction(engine) as conn:
        returned = conn.execute(
            update(emails).where(emails.c.status == "sending", emails.c.id.in_(lapsed))
            .values(status="queued", lease_until=None, worker=None, updated_at=now)).rowcount
        if returned:
            log.info("%d emails claimed by a worker that stopped before sending them went back to the queue",
                     returned)
        expired = conn.execute(
            update(emails).where(emails.c.status == "sending", emails.c.id.in_(in_doubt))
            .values(status="unknown", updated_at=now,
                    error="lease expired while its data was going out (the worker stopped or stalled)")
        ).rowcount
        once = _unlocked((emails.c.status == "unknown") & emails.c.resent.is_(False))
        requeued = conn.execute(_requeue(now).where(emails.c.id.in_(once))).rowcount \
            if unknown_policy == "resend" else 0
    if expired or requeued:
        log.info("%d expired leases became unknown; %d unknown emails queued to be sent again",
                 expired, requeued)
    return expired


def _unlocked(condition):
    # A row a worker is recording right now is skipped, not waited for: it is about to get its outcome,
    # and waiting on rows locked in another order could deadlock. (SQLite has a single writer anyway.)
    return select(emails.c.id).where(condition).with_for_update(skip_locked=True).scalar_subquery()


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
    with _transaction(engine) as conn:
        return conn.execute(statement).rowcount


def release(engine: Engine, email_ids: Iterable[int], *, now: datetime) -> int:
    """Unknown emails go back to queued, same Message-ID, to be sent by the next run; how many changed."""
    statement = _requeue(now).where(emails.c.id.in_(list(email_ids)))
    with _transaction(engine) as conn:
        return conn.execute(statement).rowcount


def _requeue(now: datetime):
    return (update(emails).where(emails.c.status == "unknown")
            .values(status="queued", resent=True, lease_until=None, next_attempt_at=None, updated_at=now))


def summary(engine: Engine) -> dict[str, int]:
    """Emails per status and keys recorded without an email (skipped, superseded), for reports."""
    counts = dict.fromkeys(EMAIL_STATUSES + KEY_OUTCOMES, 0)
    with engine.connect() as conn:
        counts.update(conn.execute(select(emails.c.status, func.count()).group_by(emails.c.status)).all())
        counts.update(conn.execute(select(notices.c.outcome, func.count())
                                   .where(notices.c.outcome.in_(KEY_OUTCOMES))
                                   .group_by(notices.c.outcome)).all())
    return counts


# --- queue state ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class QueueState:
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
