"""The PostgreSQL backend: deliverers on any number of machines, claims that skip each other's rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    Engine,
    Integer,
    Select,
    Table,
    Text,
    TextClause,
    cast,
    create_engine,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

from dunning.errors import DatabaseUnavailable
from dunning.store.backend import AsyncLedger, Backend, JsonRows, Upsert, rows_parameter
from dunning.store.schema import CLAIMABLE

__all__ = ["PostgresBackend"]

_MIGRATION_LOCK = 424242  # the advisory lock held by the process that migrates

# Rows another worker is claiming are skipped, not waited for: workers split the queue between them.
_CLAIM = text(
    "WITH due AS MATERIALIZED (SELECT id FROM emails WHERE " + CLAIMABLE
    + " AND (status = 'queued' OR next_attempt_at <= :now) ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED) "
    "UPDATE emails SET status = 'sending', fence = fence + 1, worker = :worker, lease_until = :until, "
    "data_at = NULL, updated_at = :now WHERE id IN (SELECT id FROM due) AND " + CLAIMABLE
    + " RETURNING id, fence, attempts, message_id, account_id, notice, payment_method_id, stage, locale, "
    "delivered, refused")

# The outcomes and the in-flight marks of one ledger write, each a JSON array of objects: one statement,
# one round trip, and parameters the driver passes as they are. Its conditions are those of
# ledger.outcomes' fenced record and mark, whose parameters the objects hold by name. Rows are found by
# their primary key alone (`id = ANY(…)` names the keys, `status || ''` is no index condition): a prepared
# plan cannot know how few rows the arrays hold, and would otherwise scan every row being sent through the
# status index.
_RECORD_AT_ONCE = (
    "WITH outcome AS (UPDATE emails e SET status = v.status, attempts = e.attempts + 1, next_attempt_at = v.next_at, "
    "code = v.code, reply = v.reply, error = v.error, refused = v.refused, delivered = v.delivered, "
    "updated_at = %(now)s, lease_until = NULL "
    "FROM jsonb_to_recordset(%(outcomes)s::jsonb) AS v(email_id integer, fence integer, status text, "
    "next_at timestamptz, code integer, reply text, error text, refused text, delivered text) "
    "WHERE e.id = ANY(ARRAY(SELECT (jsonb_array_elements(%(outcomes)s::jsonb) ->> 'email_id')::integer)) "
    "AND e.id = v.email_id AND e.fence = v.fence AND e.status || '' IN ('sending', 'unknown') "
    "AND e.lease_until IS NOT NULL RETURNING e.status), "
    "mark AS (UPDATE emails e SET data_at = %(now)s "
    "FROM jsonb_to_recordset(%(marks)s::jsonb) AS m(email_id integer, fence integer) "
    "WHERE e.id = ANY(ARRAY(SELECT (jsonb_array_elements(%(marks)s::jsonb) ->> 'email_id')::integer)) "
    "AND e.id = m.email_id AND e.fence = m.fence AND e.status || '' = 'sending' RETURNING e.id) "
    "SELECT status, count(*) FROM outcome GROUP BY status UNION ALL SELECT NULL, count(*) FROM mark")


_ATTEMPTS = ("SELECT id, attempts FROM emails "
             "WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(ids)s::jsonb)::integer))")


def _record_parameters(outcomes: Sequence[Mapping[str, object]], marks: Sequence[tuple[int, int]],
                       now: object) -> dict[str, object]:
    """The parameters of _RECORD_AT_ONCE."""
    return {"now": now, "outcomes": orjson.dumps(outcomes).decode(), "marks": orjson.dumps(
        [{"email_id": email_id, "fence": fence} for email_id, fence in marks]).decode()}


def _counted(rows: Sequence[tuple[Any, ...]]) -> tuple[dict[str, int], int]:
    """The rows of _RECORD_AT_ONCE: the outcomes written, by status, and the marks."""
    return ({status: count for status, count in rows if status is not None},
            sum(count for status, count in rows if status is None))


def _record_counts(cursor: DBAPICursor, parameters: dict[str, object]) -> tuple[dict[str, int], int]:
    """Run _RECORD_AT_ONCE: the outcomes written, by status, and the marks."""
    cursor.execute(_RECORD_AT_ONCE, parameters)
    return _counted(cursor.fetchall())


class _AsyncLedger(AsyncLedger):
    """psycopg's AsyncConnection, in autocommit (each write is one statement), opened from the engine's URL."""

    def __init__(self, engine: Engine, backend: PostgresBackend) -> None:
        self.dialect, self._url, self._backend = engine.dialect, engine.url, backend
        _, self._options = engine.dialect.create_connect_args(engine.url)
        self._options.pop("context", None)  # SQLAlchemy's adapters for its own connections
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._check = False

    def batch_begins(self) -> None:
        """Pinged at the next write, as the engine's pool pings a connection it hands out."""
        self._check = True

    async def attempts(self, email_ids: Sequence[int]) -> dict[int, int]:
        """One query over a JSON array of the ids."""
        cursor = await (await self._ready()).execute(_ATTEMPTS, {"ids": orjson.dumps(list(email_ids)).decode()})
        return dict(await cursor.fetchall())

    async def record_at_once(self, outcomes: Sequence[Mapping[str, object]], marks: Sequence[tuple[int, int]],
                             now: object) -> tuple[dict[str, int], int]:
        """_RECORD_AT_ONCE, committed on its own."""
        cursor = await (await self._ready()).execute(_RECORD_AT_ONCE, _record_parameters(outcomes, marks, now))
        return _counted(await cursor.fetchall())

    async def aclose(self) -> None:
        """Close the connection, if it was opened."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def _ready(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is not None and self._check:
            self._check = False
            try:
                await self._connection.execute("SELECT 1")
            except psycopg.OperationalError:  # dropped while idle: a new one, as the pool would give
                await self.aclose()
        if self._connection is None or self._connection.closed:
            self._check = False
            try:
                self._connection = await psycopg.AsyncConnection.connect(autocommit=True, **self._options)
            except psycopg.OperationalError as exc:
                raise self._backend.unreachable(self._url, (str(exc).strip().splitlines() or ["?"])[0]) from None
        return self._connection


class PostgresBackend(Backend):
    """PostgreSQL: row locks skipped by claims, JSON through jsonb, the ledger recording what is under way."""

    name = "postgresql"

    def __init__(self) -> None:
        self._psycopg: Dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]

    def create_engine(self, url: URL) -> Engine:
        """An engine that checks a pooled connection before using it."""
        return create_engine(url, pool_pre_ping=True)

    def unreachable(self, url: URL, cause: str) -> DatabaseUnavailable:
        """The server cannot be reached, or refused the connection."""
        return DatabaseUnavailable(f"database.url: cannot connect to {url.render_as_string(hide_password=True)}: "
                                   f"{cause}")

    def lock_migrations(self, conn: Connection) -> None:
        """A transaction-scoped advisory lock."""
        conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))

    def year_month(self, year: ColumnElement[int], month: ColumnElement[int]) -> ColumnElement[str]:
        """lpad does the padding."""
        return (func.lpad(cast(year, Text), 4, "0", type_=Text) + "-"
                + func.lpad(cast(month, Text), 2, "0", type_=Text))

    def utc_day(self, moment: ColumnElement[datetime]) -> ColumnElement[str]:
        """The moment at UTC, formatted."""
        return func.to_char(func.timezone("UTC", moment), "YYYY-MM-DD", type_=Text)

    def bytewise_text(self) -> TypeEngine[str]:
        """The "C" collation: bytewise, whatever the database's own."""
        return Text(collation="C")

    def begin_write(self, conn: Connection) -> None:
        """The transaction begins with the first statement; rows are locked as they are written."""

    def try_begin_write(self, cursor: DBAPICursor) -> bool:
        """The driver begins a transaction with the first statement; row locks are waited for."""
        return True

    def record_at_once(self, cursor: DBAPICursor, outcomes: Sequence[Mapping[str, object]],
                       marks: Sequence[tuple[int, int]], now: object) -> tuple[dict[str, int], int]:
        """One statement over JSON arrays, in autocommit: no BEGIN and COMMIT of their own."""
        parameters = _record_parameters(outcomes, marks, now)
        driver: Any = cursor.connection  # a psycopg cursor names its connection
        if driver.autocommit:  # a journal's own connection (impatient)
            return _record_counts(cursor, parameters)
        driver.commit()  # what was read before (a retry's attempts); nothing when no transaction is open
        driver.autocommit = True
        try:
            return _record_counts(cursor, parameters)
        finally:
            if not driver.broken:
                driver.autocommit = False

    def async_ledger(self, engine: Engine) -> AsyncLedger:
        """psycopg's AsyncConnection on the delivery process's event loop."""
        return _AsyncLedger(engine, self)

    @contextmanager
    def impatient(self, conn: Connection) -> Iterator[None]:
        """Row locks are waited for, as everywhere; the connection commits each statement (the ledger's writes on
        it are one statement each), until the pool takes it back."""
        conn.execution_options(isolation_level="AUTOCOMMIT")
        yield

    def claim_statement(self) -> TextClause:
        """The due rows locked (skipping those locked elsewhere), then taken."""
        return _CLAIM

    def json_values(self, values_json: BindParameter[str], integers: bool) -> Select[Any]:
        """jsonb_array_elements_text, cast back to integers where the column holds them."""
        element = func.jsonb_array_elements_text(cast(values_json, JSONB))
        return select(cast(element, Integer)) if integers else select(element)

    def json_rows(self, width: int, integer_columns: Sequence[int]) -> JsonRows:
        """jsonb_array_elements WITH ORDINALITY, so the rows keep their order (and take their locks in it)."""
        rows = func.jsonb_array_elements(cast(rows_parameter(), JSONB)).table_valued(
            "v", with_ordinality="n").render_derived()
        picks = [rows.c.v.op("->>")(literal_column(str(i))) for i in range(width)]
        columns: list[ColumnElement[Any]] = [cast(pick, Integer) if i in integer_columns else pick
                                             for i, pick in enumerate(picks)]
        return JsonRows(rows, columns, rows.c.n)

    def insert(self, table: Table) -> Upsert:
        """PostgreSQL's INSERT, with on_conflict_do_nothing and on_conflict_do_update."""
        return postgresql.insert(table)

    def driver_sql(self, statement: ClauseElement) -> str:
        """Compiled for psycopg, whose pyformat parameters take a dict."""
        return str(statement.compile(dialect=self._psycopg))
