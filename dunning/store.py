"""SQLAlchemy Core tables and engine: a SQLite file by default, PostgreSQL by URL; schema versioned here."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC
from pathlib import Path

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import DateTime, TypeDecorator

from dunning.errors import DatabaseNotCreated, DatabaseUnavailable, SettingsError

log = logging.getLogger(__name__)

__all__ = ["UtcDateTime", "CLAIMABLE", "V1_TABLES", "MIGRATIONS", "SCHEMA_VERSION", "upgrade", "MIN_SQLITE", "connect",
           "among"]


class UtcDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which has no time zones) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

accounts = Table(
    "accounts", metadata,
    Column("id", String, primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("cc", Text, nullable=False, default="[]"),  # JSON list
    Column("locale", String, nullable=False),
    Column("timezone", String, nullable=False),
    Column("content_hash", String, nullable=False),
    Column("dunning_paused_until", UtcDateTime),  # version 3
    Column("segment", String),  # version 3
    Index("ix_accounts_paused_id", "dunning_paused_until", "id"),  # version 7 (see _V7_REPLACED)
)

payment_methods = Table(
    "payment_methods", metadata,
    Column("id", String, primary_key=True),
    Column("account_id", String, nullable=False, index=True),
    Column("type", String, nullable=False),
    Column("brand", String),
    Column("last4", String),
    Column("exp_month", Integer),
    Column("exp_year", Integer),
    # "YYYY-MM" of a card's expiry, computed at import so expiring cards are found by index (version 3).
    Column("expiry_month", String),
    Index("ix_payment_methods_expiry_card", "expiry_month", "account_id", "id"),  # version 7
)

subscriptions = Table(
    "subscriptions", metadata,
    Column("id", String, primary_key=True),
    Column("account_id", String, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("payment_method_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("cancelled_at", UtcDateTime),
    Column("cancel_reason", String),
    Column("data_deleted", Boolean, nullable=False, default=False),
    Index("ix_subscriptions_cancelled_account", "cancel_reason", "cancelled_at", "data_deleted",
          "account_id"),  # version 7
)

invoices = Table(
    "invoices", metadata,
    Column("id", String, primary_key=True),
    Column("account_id", String, nullable=False, index=True),
    Column("subscription_id", String, nullable=False),
    Column("currency", String(3), nullable=False),
    # Decimal strings: exact on every backend, never floats.
    Column("total", String, nullable=False),
    Column("amount_paid", String, nullable=False),
    # status is open and total - amount_paid > 0, computed at import so candidates are found by index.
    Column("owed", Boolean, nullable=False),
    Column("issued_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("status", String, nullable=False),
    Index("ix_invoices_owed_due_account", "owed", "due_date", "account_id"),  # version 7
    Column("hosted_invoice_url", Text),  # version 8: the billing system's own payment page, when it has one
)

charges = Table(
    "charges", metadata,
    Column("id", String, primary_key=True),
    Column("account_id", String, nullable=False, index=True),
    Column("invoice_id", String, nullable=False),
    Column("payment_method_id", String, nullable=False),
    Column("attempted_at", UtcDateTime, nullable=False),
    Column("outcome", String, nullable=False),
    Column("failure_code", String),
    Column("next_retry_at", UtcDateTime),
    Index("ix_charges_outcome_attempted_account", "outcome", "attempted_at", "account_id"),  # version 7
)

# The outbox: one row per email to send. Its status moves queued → sending → sent | retry | failed | unknown.
# A row is claimable while its status is queued, or retry once next_attempt_at has passed.
CLAIMABLE = "status IN ('queued', 'retry')"  # a literal, so both databases use the partial index below

emails = Table(
    "emails", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String, nullable=False),
    Column("payment_method_id", String),
    Column("notice", String, nullable=False),
    Column("stage", Integer),
    Column("locale", String, nullable=False),
    Column("status", String, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),  # delivery attempts recorded so far
    Column("fence", Integer, nullable=False, default=0),  # bumped by every claim; outcomes must quote it
    Column("worker", String),
    # Set while a worker holds the row (and kept when its lease expires) until an outcome is recorded.
    Column("lease_until", UtcDateTime),
    Column("next_attempt_at", UtcDateTime),  # retry rows only
    Column("message_id", String, nullable=False),
    Column("resent", Boolean, nullable=False, default=False),  # unknown → queued at most once
    Column("code", Integer),  # last SMTP reply code
    Column("reply", Text),
    Column("error", Text),
    Column("refused", Text),  # JSON: recipients refused at RCPT, with code and text
    Column("delivered", Text),  # JSON: recipients that accepted the message (never sent it again)
    # Set just before the message data goes out under the current claim (on SQLite, when a flight log
    # that says so is replayed): only such an email can be in doubt after a crash; one claimed without
    # it goes back to the queue when its lease runs out.
    Column("data_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_emails_claimable", "id", postgresql_where=text(CLAIMABLE), sqlite_where=text(CLAIMABLE)),
    Index("ix_emails_status_lease", "status", "lease_until"),
)

# What an email is rendered from, written once with its emails row. It has a table of its own because
# every claim and every outcome rewrites the emails row: with one to two kilobytes of JSON inside,
# those writes would copy it each time, and the claims and outcomes of a run would write ten times the
# pages (and the checkpoints copy them again).
email_payloads = Table(
    "email_payloads", metadata,
    Column("email_id", Integer, primary_key=True, autoincrement=False),
    Column("payload", Text, nullable=False),  # JSON: recipients and render context
)

# The ledger of notice keys: a key held here is never sent again.
notices = Table(
    "notices", metadata,
    Column("key", String, primary_key=True),
    Column("account_id", String, nullable=False, index=True),
    Column("notice", String, nullable=False),
    Column("outcome", String, nullable=False),  # email | skipped | superseded
    Column("email_id", Integer, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    # The as_of of the run that recorded the key (version 3): balance_settled counts from it, so that
    # --as-of runs and back-fills decide as live ones do.
    Column("as_of", UtcDateTime),
    Index("ix_notices_notice_as_of", "notice", "as_of"),
)

# Bounces (schema version 5). An address is kept lower-cased: mailbox providers match it without case.
suppressions = Table(
    "suppressions", metadata,
    Column("address", String, primary_key=True),
    Column("reason", String, nullable=False),  # hard_bounce | soft_bounces | manual
    Column("detail", Text),  # the bounce's status and diagnostic, or the operator's note
    Column("account_id", String, index=True),  # the account whose email bounced, when known
    Column("email_id", Integer),
    Column("created_by", String, nullable=False),  # "bounce", or who added it by hand
    Column("created_at", UtcDateTime, nullable=False),
)

# One row per bounced recipient of one email, as a bounce message reported it.
bounces = Table(
    "bounces", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String, nullable=False),
    Column("kind", String, nullable=False),  # hard | soft
    Column("email_id", Integer, nullable=False),
    Column("account_id", String, nullable=False),
    Column("status", String),  # RFC 3463 status code, e.g. 5.1.1
    Column("diagnostic", Text),
    Column("message_key", String, nullable=False),
    Column("bounced_at", UtcDateTime, nullable=False),
    Index("ix_bounces_address_at", "address", "bounced_at"),
)

# Every bounce message ingested, by Message-ID or content digest: ingesting one twice changes nothing.
bounce_messages = Table(
    "bounce_messages", metadata,
    Column("key", String, primary_key=True),
    Column("outcome", String, nullable=False),  # hard | soft | ignored | unparsed
    Column("email_id", Integer),
    Column("ingested_at", UtcDateTime, nullable=False),
)

# Version 8: when each group's balance changed (import and sync, dated by their --as-of), so that a
# settlement has a date; and every click on a link an email carried.
balance_history = Table(
    "balance_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String, nullable=False),
    Column("payment_method_id", String, nullable=False),
    Column("balance", Text, nullable=False),  # JSON: {"EUR": "12.50"}; {} once nothing is owed
    Column("previous", Text),  # the balance before this change, the same way; null for a group seen first
    Column("live", Boolean, nullable=False),  # the group still has a live subscription
    Column("changed_at", UtcDateTime, nullable=False),
    Index("ix_balance_history_group_at", "account_id", "payment_method_id", "changed_at"),
    Index("ix_balance_history_at", "changed_at"),
)

link_clicks = Table(
    "link_clicks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String, nullable=False),  # the notice key the token was signed for
    Column("email_id", Integer, index=True),  # the email that carried it, when the ledger has it
    Column("purpose", String, nullable=False),  # settlement | update
    Column("clicked_at", UtcDateTime, nullable=False),
)

V1_TABLES = (accounts, payment_methods, subscriptions, invoices, charges, emails, notices)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(V1_TABLES))
    # Version 1 kept each email's payload in its row (the emails table above is the current one).
    conn.execute(text("ALTER TABLE emails ADD COLUMN payload TEXT NOT NULL DEFAULT ''"))


def _v2(conn: Connection) -> None:
    """Payloads move out of the emails rows into email_payloads."""
    email_payloads.create(conn)
    conn.execute(text("INSERT INTO email_payloads (email_id, payload) SELECT id, payload FROM emails"))
    conn.execute(text("ALTER TABLE emails DROP COLUMN payload"))


def _v3(conn: Connection) -> None:
    """Outcomes per recipient: who already has an email, so a retry goes to the others alone."""
    # _v1 creates the emails table as it is now: a new database already has the column.
    if "delivered" not in {column["name"] for column in inspect(conn).get_columns("emails")}:
        conn.execute(text("ALTER TABLE emails ADD COLUMN delivered TEXT"))


def _v4(conn: Connection) -> None:
    """When an email's data went out: after a crash, only those are unknown."""
    if "data_at" not in {column["name"] for column in inspect(conn).get_columns("emails")}:
        conn.execute(text("ALTER TABLE emails ADD COLUMN data_at TIMESTAMP"))


_V5_COLUMNS = (("accounts", "dunning_paused_until"), ("accounts", "segment"), ("payment_methods", "expiry_month"),
               ("notices", "as_of"))
_V5_INDEXES = ("ix_notices_notice_as_of",)  # and two that version 7 replaced: see _V7_REPLACED


def _v5(conn: Connection) -> None:
    """Pause and segment on accounts, cards' expiry month, and the as_of each key was recorded at."""
    # _v1 creates today's tables: on a database created by this version the columns are already there.
    for table_name, column_name in _V5_COLUMNS:
        if column_name not in {c["name"] for c in inspect(conn).get_columns(table_name)}:
            column = metadata.tables[table_name].c[column_name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {table_name} ADD COLUMN {column_name} {kind}"))
    for table in (accounts, payment_methods, notices):
        for index in table.indexes:
            if index.name in _V5_INDEXES:
                index.create(conn, checkfirst=True)
    conn.execute(text("UPDATE notices SET as_of = created_at WHERE as_of IS NULL"))
    month = ("printf('%04d-%02d', exp_year, exp_month)" if conn.dialect.name == "sqlite"
             else "lpad(exp_year::text, 4, '0') || '-' || lpad(exp_month::text, 2, '0')")
    conn.execute(text(f"UPDATE payment_methods SET expiry_month = {month} "
                      "WHERE type = 'card' AND exp_year IS NOT NULL AND exp_month IS NOT NULL"))
    # Lines imported before held pause and segment as unknown fields: the next import rewrites them all.
    conn.execute(text("UPDATE accounts SET content_hash = ''"))


def _v6(conn: Connection) -> None:
    """Bounces: the messages ingested, each bounced recipient, and the suppressed addresses."""
    metadata.create_all(conn, tables=[suppressions, bounces, bounce_messages])


# Each index a candidate range is read from holds every column the range reads, the account id above
# all: finding the candidates reads index pages alone, never a row. Before, a run over a million
# accounts read one table page per paused account's invoice and per paused account, 20,000 pages,
# which took a second whenever they were no longer in memory.
_V7_REPLACED = {"ix_accounts_paused": "ix_accounts_paused_id",
                "ix_payment_methods_expiry": "ix_payment_methods_expiry_card",
                "ix_subscriptions_cancelled": "ix_subscriptions_cancelled_account",
                "ix_invoices_owed_due": "ix_invoices_owed_due_account",
                "ix_charges_outcome_attempted": "ix_charges_outcome_attempted_account"}


def _v7(conn: Connection) -> None:
    """The candidate ranges' indexes cover what the ranges read."""
    for old in _V7_REPLACED:
        conn.execute(text(f"DROP INDEX IF EXISTS {old}"))
    for table in (accounts, payment_methods, subscriptions, invoices, charges):
        for index in table.indexes:
            if index.name in _V7_REPLACED.values():
                index.create(conn, checkfirst=True)


def _v8(conn: Connection) -> None:
    """The balance history, link clicks, and each invoice's own payment page."""
    metadata.create_all(conn, tables=[balance_history, link_clicks])
    if "hosted_invoice_url" not in {column["name"] for column in inspect(conn).get_columns("invoices")}:
        conn.execute(text("ALTER TABLE invoices ADD COLUMN hosted_invoice_url TEXT"))


# Append-only: migration N brings a database from version N-1 to N.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8)
SCHEMA_VERSION = len(MIGRATIONS)


def upgrade(engine: Engine) -> int:
    """Bring the schema to SCHEMA_VERSION in one transaction; returns the version found before."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two processes starting at once must not both migrate.
            conn.execute(text("SELECT pg_advisory_xact_lock(424242)"))
        schema_version.create(conn, checkfirst=True)
        found = conn.execute(select(schema_version.c.version)).scalar()
        current = found or 0
        if current > SCHEMA_VERSION:
            raise SettingsError(f"the database schema is version {current}, newer than this dunning "
                                f"({SCHEMA_VERSION}); upgrade dunning")
        for migration in MIGRATIONS[current:]:
            migration(conn)
        if found is None:
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        elif current != SCHEMA_VERSION:
            conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
    return current


SQLITE_BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another's write lock before giving up


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


MIN_SQLITE = (3, 35)  # UPDATE … RETURNING, INSERT … ON CONFLICT … RETURNING, ALTER TABLE … DROP COLUMN


def _require_sqlite(version: tuple[int, ...]) -> None:
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


def connect(url: str, *, migrate: bool = True) -> Engine:
    """An engine for the URL with the schema brought up to date."""
    try:
        parsed = make_url(url)
    except Exception:
        raise SettingsError(f"database.url: not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        _require_sqlite(sqlite3.sqlite_version_info)
        if parsed.database and parsed.database != ":memory:":
            _database_directory(Path(parsed.database))
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True)
    else:
        raise SettingsError(f"database.url: unsupported database {parsed.get_backend_name()!r}; "
                            "use sqlite:///FILE or postgresql+psycopg://…")
    try:
        if migrate:
            upgrade(engine)
        else:
            with engine.connect():
                pass
    except (OperationalError, InterfaceError) as exc:
        raise _unreachable(parsed, exc) from None
    return engine


def _unreachable(parsed: URL, exc: DBAPIError) -> DatabaseNotCreated | DatabaseUnavailable:
    """The error for a database that cannot be opened, naming it (never its password) and the cause."""
    cause = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    if parsed.get_backend_name() == "sqlite":
        return DatabaseNotCreated(f"database.url: cannot open or create the SQLite file {parsed.database}: {cause}")
    return DatabaseUnavailable(f"database.url: cannot connect to {parsed.render_as_string(hide_password=True)}: "
                               f"{cause}")


def among(conn: Connection, column: Column, values: Sequence[str] | Sequence[int]) -> ColumnElement[bool]:
    """`column IN (values)` with the values bound as one JSON array.

    SQLAlchemy renders and binds an IN list placeholder by placeholder on every execution, and
    SQLite prepares each new length anew; for the batches of hundreds of ids a run reads, that cost
    more than the queries. The JSON array is one parameter, and the statement is the same every time.
    """
    values_json = bindparam(None, orjson.dumps(list(values)).decode(), type_=Text)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB  # loaded only by a run on PostgreSQL
        element = func.jsonb_array_elements_text(cast(values_json, JSONB))
        if isinstance(column.type, Integer):
            return column.in_(select(cast(element, Integer)))
        return column.in_(select(element))
    return column.in_(select(literal_column("value")).select_from(func.json_each(values_json)))

