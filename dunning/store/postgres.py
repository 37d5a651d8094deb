"""The PostgreSQL backend: deliverers on any number of machines, claims that skip each other's rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
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
from dunning.store.backend import Backend, JsonRows, Upsert, rows_parameter
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


def _record_counts(cursor: DBAPICursor, parameters: dict[str, object]) -> tuple[dict[str, int], int]:
    """Run _RECORD_AT_ONCE: the outcomes written, by status, and the marks."""
    cursor.execute(_RECORD_AT_ONCE, parameters)
    rows = cursor.fetchall()
    return ({status: count for status, count in rows if status is not None},
            sum(count for status, count in rows if status is None))


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
        parameters = {"now": now, "outcomes": orjson.dumps(outcomes).decode(), "marks": orjson.dumps(
            [{"email_id": email_id, "fence": fence} for email_id, fence in marks]).decode()}
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
