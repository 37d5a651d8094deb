"""The schema's history: migration N brings a database from version N-1 to N, all in one transaction."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Column, Connection, Engine, Index, and_, inspect, select, text, update
from sqlalchemy.schema import CreateColumn, DropIndex

from dunning.errors import SettingsError
from dunning.store.backend import Backend
from dunning.store.schema import (
    V1_TABLES,
    accounts,
    balance_history,
    bounce_messages,
    bounces,
    charges,
    email_payloads,
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

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "V7_REPLACED", "upgrade"]

Migration = Callable[[Connection, Backend], None]


def _v1(conn: Connection, backend: Backend) -> None:
    """The billing tables, the outbox and the ledger of keys."""
    metadata.create_all(conn, tables=list(V1_TABLES))
    # Version 1 kept each email's payload in its row (the emails table in schema is the current one).
    conn.execute(text("ALTER TABLE emails ADD COLUMN payload TEXT NOT NULL DEFAULT ''"))


def _v2(conn: Connection, backend: Backend) -> None:
    """Payloads move out of the emails rows into email_payloads."""
    email_payloads.create(conn)
    conn.execute(text("INSERT INTO email_payloads (email_id, payload) SELECT id, payload FROM emails"))
    conn.execute(text("ALTER TABLE emails DROP COLUMN payload"))


def _columns(conn: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(conn).get_columns(table)}


def _add_column(conn: Connection, column: Column[object]) -> None:
    definition = CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(text("ALTER TABLE " + column.table.name + " ADD COLUMN " + str(definition)))


def _v3(conn: Connection, backend: Backend) -> None:
    """Outcomes per recipient: who already has an email, so a retry goes to the others alone."""
    # _v1 creates the emails table as it is now: a new database already has the column.
    if "delivered" not in _columns(conn, "emails"):
        conn.execute(text("ALTER TABLE emails ADD COLUMN delivered TEXT"))


def _v4(conn: Connection, backend: Backend) -> None:
    """When an email's data went out: after a crash, only those are unknown."""
    if "data_at" not in _columns(conn, "emails"):
        conn.execute(text("ALTER TABLE emails ADD COLUMN data_at TIMESTAMP"))


_V5_COLUMNS = ((accounts, "dunning_paused_until"), (accounts, "segment"), (payment_methods, "expiry_month"),
               (notices, "as_of"))
_V5_INDEXES = ("ix_notices_notice_as_of",)  # and two that version 7 replaced: see V7_REPLACED


def _v5(conn: Connection, backend: Backend) -> None:
    """Pause and segment on accounts, cards' expiry month, and the as_of each key was recorded at."""
    # _v1 creates today's tables: on a database created by this version the columns are already there.
    for table, column_name in _V5_COLUMNS:
        if column_name not in _columns(conn, table.name):
            _add_column(conn, table.c[column_name])
    for index in notices.indexes:
        if index.name in _V5_INDEXES:
            index.create(conn, checkfirst=True)
    conn.execute(update(notices).where(notices.c.as_of.is_(None)).values(as_of=notices.c.created_at))
    methods = payment_methods.c
    conn.execute(update(payment_methods)
                 .where(and_(methods.type == "card", methods.exp_year.is_not(None), methods.exp_month.is_not(None)))
                 .values(expiry_month=backend.year_month(methods.exp_year, methods.exp_month)))
    # Lines imported before held pause and segment as unknown fields: the next import rewrites them all.
    conn.execute(update(accounts).values(content_hash=""))


def _v6(conn: Connection, backend: Backend) -> None:
    """Bounces: the messages ingested, each bounced recipient, and the suppressed addresses."""
    metadata.create_all(conn, tables=[suppressions, bounces, bounce_messages])


# Each index a candidate range is read from holds every column the range reads, the account id above
# all: finding the candidates reads index pages alone, never a row (before, a run over a million
# accounts read a table page per paused account's invoice and per paused account).
V7_REPLACED = {"ix_accounts_paused": "ix_accounts_paused_id",
               "ix_payment_methods_expiry": "ix_payment_methods_expiry_card",
               "ix_subscriptions_cancelled": "ix_subscriptions_cancelled_account",
               "ix_invoices_owed_due": "ix_invoices_owed_due_account",
               "ix_charges_outcome_attempted": "ix_charges_outcome_attempted_account"}


def _v7(conn: Connection, backend: Backend) -> None:
    """The candidate ranges' indexes cover what the ranges read."""
    for old in V7_REPLACED:
        conn.execute(DropIndex(Index(old), if_exists=True))
    for table in (accounts, payment_methods, subscriptions, invoices, charges):
        for index in table.indexes:
            if index.name in V7_REPLACED.values():
                index.create(conn, checkfirst=True)


# Append-only: migration N brings a database from version N-1 to N.
def _v8(conn: Connection, backend: Backend) -> None:
    """Billing sources: their cursors and the events already applied."""
    metadata.create_all(conn, tables=[source_state, source_events])


def _v9(conn: Connection, backend: Backend) -> None:
    """Each bounce's reason (user unknown, mailbox full, blocked, …)."""
    # _v6 creates today's bounces table: on a database created by this version the column is already there.
    if "reason" not in _columns(conn, "bounces"):
        conn.execute(text("ALTER TABLE bounces ADD COLUMN reason VARCHAR"))


def _v10(conn: Connection, backend: Backend) -> None:
    """The balance history, link clicks, and each invoice's own payment page."""
    metadata.create_all(conn, tables=[balance_history, link_clicks])
    if "hosted_invoice_url" not in _columns(conn, "invoices"):
        conn.execute(text("ALTER TABLE invoices ADD COLUMN hosted_invoice_url TEXT"))


MIGRATIONS: tuple[Migration, ...] = (_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10)
SCHEMA_VERSION = len(MIGRATIONS)


def upgrade(engine: Engine, backend: Backend) -> int:
    """Bring the schema to SCHEMA_VERSION in one transaction; returns the version found before."""
    with engine.begin() as conn:
        backend.lock_migrations(conn)  # two processes starting at once must not both migrate
        schema_version.create(conn, checkfirst=True)
        found = conn.execute(select(schema_version.c.version)).scalar()
        current = found or 0
        if current > SCHEMA_VERSION:
            raise SettingsError(f"the database schema is version {current}, newer than this dunning "
                                f"({SCHEMA_VERSION}); upgrade dunning")
        for migration in MIGRATIONS[current:]:
            migration(conn, backend)
        if found is None:
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        elif current != SCHEMA_VERSION:
            conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
    return current
