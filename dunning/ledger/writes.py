"""The ledger's write transactions: one at a time per connection, the write lock taken as the backend needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache

from sqlalchemy import Connection, Dialect, Engine

from dunning import store

__all__ = ["transaction", "datetime_parameter"]


@contextmanager
def transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """One write transaction, on a connection of its own or on one the caller holds (not in a transaction);
    where the database has one write lock, it is taken up front, so writers queue, never interleave."""
    if isinstance(bind, Engine):
        with bind.connect() as conn, transaction(conn):
            yield conn
        return
    store.backend_of(bind).begin_write(bind)
    try:
        yield bind
    except BaseException:
        bind.rollback()
        raise
    bind.commit()


@cache
def datetime_parameter(dialect: Dialect) -> Callable[[datetime | None], object]:
    """What the driver is given for a UtcDateTime value, as SQLAlchemy binds it on this database (made once per
    dialect: a delivery process asks at every write). On SQLite, the text SQLAlchemy stores: a datetime would be
    turned into text of another form by the driver's own adapter, row by row."""
    process = store.UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else lambda value: value
