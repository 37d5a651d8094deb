"""The one seam for the database: what differs between SQLite and PostgreSQL, behind one interface.

The backend is chosen once, when the store opens (store.connect); everything else asks it, never which
database it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    FromClause,
    Integer,
    Select,
    Table,
    Text,
    TextClause,
    bindparam,
    select,
)
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

from dunning.errors import DatabaseNotCreated, DatabaseUnavailable

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

__all__ = ["Backend", "JsonRows", "Upsert", "rows_parameter"]

Upsert: TypeAlias = "PostgresInsert | SqliteInsert"  # an INSERT with ON CONFLICT clauses


class JsonRows:
    """Rows passed as one JSON array parameter named `rows`, read back as a table: its columns, in order."""

    def __init__(self, source: FromClause, columns: list[ColumnElement[Any]], order: ColumnElement[Any] | None,
                 where: ColumnElement[bool] | None = None) -> None:
        self.source, self.columns, self.order, self.where = source, columns, order, where

    def select(self, *constants: ColumnElement[Any]) -> Select[Any]:
        """Every row, its columns then these constants."""
        query = select(*self.columns, *constants).select_from(self.source)
        if self.where is not None:
            query = query.where(self.where)
        return query.order_by(self.order) if self.order is not None else query


def rows_parameter() -> BindParameter[str]:
    """The JSON array of rows a JsonRows reads."""
    return bindparam("rows", type_=Text)


class Backend(ABC):
    """What a database needs done its own way: opening, write locks, the claim, JSON parameters, upserts."""

    name: ClassVar[str]  # SQLAlchemy's name for the database

    @abstractmethod
    def create_engine(self, url: URL) -> Engine:
        """An engine for the URL, set up as dunning needs it (the database may not exist yet)."""

    @abstractmethod
    def unreachable(self, url: URL, cause: str) -> DatabaseNotCreated | DatabaseUnavailable:
        """The error for a database that cannot be opened, naming it (never its password) and the cause."""

    @abstractmethod
    def lock_migrations(self, conn: Connection) -> None:
        """Hold, for this transaction, the lock that lets one process alone migrate."""

    @abstractmethod
    def year_month(self, year: ColumnElement[int], month: ColumnElement[int]) -> ColumnElement[str]:
        """"YYYY-MM" of two integer columns."""

    @abstractmethod
    def utc_day(self, moment: ColumnElement[datetime]) -> ColumnElement[str]:
        """"YYYY-MM-DD": the UTC day of a moment column."""

    @abstractmethod
    def bytewise_text(self) -> TypeEngine[str]:
        """A text type that compares byte by byte (the order batches are read in)."""

    @abstractmethod
    def begin_write(self, conn: Connection) -> None:
        """Start a write transaction on a connection not in one (the write lock taken now, where there is one)."""

    @abstractmethod
    def try_begin_write(self, cursor: DBAPICursor) -> bool:
        """Start a write transaction on the driver's cursor; False when the write lock is held elsewhere right now
        (only on an impatient connection)."""

    @contextmanager
    def impatient(self, conn: Connection) -> Iterator[None]:
        """While inside, writes on conn give up at once when another connection holds the write lock."""
        yield

    @abstractmethod
    def claim_statement(self) -> TextClause:
        """The claim: due emails to sending for a worker (:worker, :limit, :now, :until), RETURNING their rows."""

    @abstractmethod
    def json_values(self, values_json: BindParameter[str], integers: bool) -> Select[Any]:
        """The elements of a JSON array parameter as a one-column select (integers or text)."""

    @abstractmethod
    def json_rows(self, width: int, integer_columns: Sequence[int]) -> JsonRows:
        """A JSON array of arrays (parameter :rows) as a table of `width` columns, in the array's order."""

    @abstractmethod
    def insert(self, table: Table) -> Upsert:
        """An INSERT that knows this database's ON CONFLICT clauses."""

    @abstractmethod
    def driver_sql(self, statement: ClauseElement) -> str:
        """The statement as the driver's own SQL, taking its parameters as a dict by name."""

    def record_at_once(self, cursor: DBAPICursor, outcomes: Sequence[Mapping[str, object]],
                       marks: Sequence[tuple[int, int]], now: object) -> tuple[dict[str, int], int] | None:
        """Write outcomes (the parameters of the ledger's fenced record, by name) and in-flight marks (email id,
        fence; none of an email among the outcomes) in one statement, committed on its own: how many outcomes
        of each status and how many marks held. None where the database has no such statement: the ledger
        then writes them one by one in a transaction."""
        return None

    def flight_folder(self, url: URL) -> Path | None:
        """Where delivery processes keep their flight logs; None when the ledger records what is under way."""
        return None

    def among(self, column: Column[Any], values: Sequence[str] | Sequence[int]) -> ColumnElement[bool]:
        """`column IN (values)` with the values bound as one JSON array.

        SQLAlchemy renders and binds an IN list placeholder by placeholder on every execution, and a
        database prepares each new length anew; the JSON array is one parameter, and the statement is the
        same every time.
        """
        values_json = bindparam(None, orjson.dumps(list(values)).decode(), type_=Text)
        return column.in_(self.json_values(values_json, isinstance(column.type, Integer)))
