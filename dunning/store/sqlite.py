"""The SQLite backend: a file on this machine, one writer at a time, flight logs beside it."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    Text,
    TextClause,
    create_engine,
    event,
    func,
    select,
    text,
    true,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

from dunning.errors import DatabaseNotCreated, SettingsError
from dunning.store.backend import Backend, JsonRows, Upsert, rows_parameter
from dunning.store.schema import CLAIMABLE

__all__ = ["SqliteBackend", "MIN_SQLITE", "SQLITE_BUSY_TIMEOUT_MS"]

log = logging.getLogger("dunning.store")

SQLITE_BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another's write lock before giving up
MIN_SQLITE = (3, 35)  # UPDATE … RETURNING, INSERT … ON CONFLICT … RETURNING, ALTER TABLE … DROP COLUMN

# BEGIN IMMEDIATE already made this the only writer; the hint keeps SQLite off a sort of the queue.
_CLAIM = text(
    "UPDATE emails SET status = 'sending', fence = fence + 1, worker = :worker, lease_until = :until, "
    "data_at = NULL, updated_at = :now WHERE id IN (SELECT id FROM emails INDEXED BY ix_emails_claimable WHERE "
    + CLAIMABLE + " AND (status = 'queued' OR next_attempt_at <= :now) ORDER BY id LIMIT :limit) "
    "RETURNING id, fence, attempts, message_id, account_id, notice, payment_method_id, stage, locale, "
    "delivered, refused")


def _pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")
    dbapi_conn.execute("PRAGMA busy_timeout=" + str(SQLITE_BUSY_TIMEOUT_MS))


def _require_version(version: tuple[int, ...]) -> None:
    if version < MIN_SQLITE:
        found, needed = (".".join(map(str, v)) for v in (version, MIN_SQLITE))
        raise SettingsError(f"database.url: this Python's SQLite is {found}; dunning needs {needed} or newer "
                            "(or use PostgreSQL)")


def _database_directory(path: Path) -> None:
    """Create the SQLite file's directory when only it is missing (var/ by default), saying so; a path
    further off (a typo, most likely) is refused rather than created."""
    directory = path.parent
    if directory.is_dir():
        return
    if not directory.parent.is_dir():
        raise DatabaseNotCreated(f"database.url: the directory {directory} does not exist; create it "
                                 f"(mkdir -p {directory}) or change database.url")
    try:
        directory.mkdir()
    except OSError as exc:
        raise DatabaseNotCreated(f"database.url: cannot create the directory {directory}: {exc.strerror}") from None
    log.info("created the directory %s for the database", directory)


def _on_disk(url: URL) -> str | None:
    """The database file of a URL, None for one in memory."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


class SqliteBackend(Backend):
    """SQLite: WAL, a write lock taken up front, JSON through json_each, flight logs beside the file."""

    name = "sqlite"

    def __init__(self) -> None:
        self._named = SQLiteDialect_pysqlite(paramstyle="named")

    def create_engine(self, url: URL) -> Engine:
        """An engine on the file (its directory made if only it is missing), in WAL mode."""
        _require_version(sqlite3.sqlite_version_info)
        if url.database and url.database != ":memory:":
            _database_directory(Path(url.database))
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _pragmas)
        return engine

    def unreachable(self, url: URL, cause: str) -> DatabaseNotCreated:
        """The file cannot be opened or created."""
        return DatabaseNotCreated(f"database.url: cannot open or create the SQLite file {url.database}: {cause}")

    def lock_migrations(self, conn: Connection) -> None:
        """The write lock the migration's first write takes is enough: there is no other writer then."""

    def year_month(self, year: ColumnElement[int], month: ColumnElement[int]) -> ColumnElement[str]:
        """printf does the padding."""
        return func.printf("%04d-%02d", year, month, type_=Text)

    def utc_day(self, moment: ColumnElement[datetime]) -> ColumnElement[str]:
        """SQLite keeps UTC moments as ISO text: the day is its first ten characters."""
        return func.substr(moment, 1, 10, type_=Text)

    def bytewise_text(self) -> TypeEngine[str]:
        """SQLite's default collation is bytewise."""
        return Text()

    def begin_write(self, conn: Connection) -> None:
        """Take the write lock up front, so writers queue, never interleave."""
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def try_begin_write(self, cursor: DBAPICursor) -> bool:
        """BEGIN IMMEDIATE; False when the lock is held and the connection does not wait for it."""
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return False
            raise
        return True

    @contextmanager
    def impatient(self, conn: Connection) -> Iterator[None]:
        """busy_timeout 0: SQLite's own wait would stop the thread, and a delivery process's event loop with it."""
        driver = conn.connection.driver_connection  # SQLAlchemy opens no transaction for a PRAGMA run here
        assert driver is not None
        driver.execute("PRAGMA busy_timeout = 0")
        try:
            yield
        finally:
            driver.execute("PRAGMA busy_timeout = " + str(SQLITE_BUSY_TIMEOUT_MS))

    def claim_statement(self) -> TextClause:
        """One UPDATE … RETURNING over the claimable index."""
        return _CLAIM

    def json_values(self, values_json: BindParameter[str], integers: bool) -> Select[Any]:
        """json_each gives each element its own type."""
        return select(func.json_each(values_json).table_valued("value").c.value)

    def json_rows(self, width: int, integer_columns: Sequence[int]) -> JsonRows:
        """json_each over the rows, each column json_extract'ed ("WHERE true" tells ON CONFLICT from a join's ON)."""
        rows = func.json_each(rows_parameter()).table_valued("value")
        columns: list[ColumnElement[Any]] = [func.json_extract(rows.c.value, f"$[{i}]") for i in range(width)]
        return JsonRows(rows, columns, None, true())

    def insert(self, table: Table) -> Upsert:
        """SQLite's INSERT, with on_conflict_do_nothing and on_conflict_do_update."""
        return sqlite.insert(table)

    def driver_sql(self, statement: ClauseElement) -> str:
        """Compiled with named parameters, which sqlite3 takes as a dict."""
        return str(statement.compile(dialect=self._named))

    def flight_folder(self, url: URL) -> Path | None:
        """Beside the file (with its -wal and -shm files); None for a database in memory."""
        database = _on_disk(url)
        return Path(database + "-flight") if database else None

