"""The ledger's write transactions: one at a time per connection, the write lock taken as the backend needs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from dunning import store

__all__ = ["transaction"]


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
