"""The store: the schema and its migrations, opened on SQLite (a file by default) or PostgreSQL (by URL).

Which database it is, is decided here once, when the store opens: the backend for it (store.backend)
does what differs between them, and backend_of finds it again for an engine or a connection.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from dunning.errors import SettingsError
from dunning.store.backend import Backend
from dunning.store.migrations import MIGRATIONS, SCHEMA_VERSION, V7_REPLACED
from dunning.store.migrations import upgrade as _upgrade
from dunning.store.schema import (
    CLAIMABLE,
    V1_TABLES,
    UtcDateTime,
    accounts,
    balance_history,
    bounce_messages,
    bounces,
    charges,
    email_payloads,
    emails,
    invoices,
    link_clicks,
    metadata,
    notices,
    payment_methods,
    schema_version,
    source_events,
    source_state,
    subscriptions,
    suppressions,
)

__all__ = ["Backend", "backend_of", "connect", "upgrade", "among", "UtcDateTime", "CLAIMABLE", "V1_TABLES",
           "MIGRATIONS", "SCHEMA_VERSION", "V7_REPLACED", "metadata", "schema_version", "accounts",
           "payment_methods", "subscriptions", "invoices", "charges", "emails", "email_payloads", "notices",
           "suppressions", "bounces", "bounce_messages", "source_state", "source_events",
           "balance_history", "link_clicks"]

# SQLAlchemy's name for each database → the module and class of its backend, imported when a store opens.
_KNOWN = {"sqlite": ("dunning.store.sqlite", "SqliteBackend"),
          "postgresql": ("dunning.store.postgres", "PostgresBackend")}
_LOADED: dict[str, Backend] = {}


def _backend(name: str) -> Backend:
    backend = _LOADED.get(name)
    if backend is None:
        if name not in _KNOWN:
            raise SettingsError(f"database.url: unsupported database {name!r}; "
                                "use sqlite:///FILE or postgresql+psycopg://…")
        module, class_name = _KNOWN[name]
        backend = _LOADED[name] = getattr(importlib.import_module(module), class_name)()
    return backend


def backend_of(bind: Engine | Connection) -> Backend:
    """The backend an engine (or one of its connections) was opened with."""
    return _backend(bind.dialect.name)


def connect(url: str, *, migrate: bool = True) -> Engine:
    """An engine for the URL with the schema brought up to date."""
    try:
        parsed = make_url(url)
    except Exception:
        raise SettingsError(f"database.url: not a database URL: {url!r}") from None
    backend = _backend(parsed.get_backend_name())
    engine = backend.create_engine(parsed)
    try:
        if migrate:
            _upgrade(engine, backend)
        else:
            with engine.connect():
                pass
    except (OperationalError, InterfaceError) as exc:
        raise backend.unreachable(parsed, _cause(exc)) from None
    return engine


def upgrade(engine: Engine) -> int:
    """Bring the schema to SCHEMA_VERSION in one transaction; returns the version found before."""
    return _upgrade(engine, backend_of(engine))


def _cause(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__


def among(conn: Connection, column: Column[Any], values: Sequence[str] | Sequence[int]) -> ColumnElement[bool]:
    """`column IN (values)` with the values bound as one JSON array (see Backend.among)."""
    return backend_of(conn).among(column, values)

