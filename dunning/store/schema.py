"""The schema as it is now: SQLAlchemy Core tables, and the UTC datetime type they share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Column, Date, Dialect, Index, Integer, MetaData, String, Table, Text, text
from sqlalchemy.types import DateTime, TypeDecorator

__all__ = ["UtcDateTime", "metadata", "schema_version", "accounts", "payment_methods", "subscriptions", "invoices",
           "charges", "CLAIMABLE", "emails", "email_payloads", "notices", "suppressions", "bounces", "bounce_messages",
           "source_state", "source_events",
           "balance_history", "link_clicks", "V1_TABLES"]


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on a database without time zones as on one with them."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The value in UTC (a database without time zones stores the UTC wall time)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """The stored value as an aware UTC datetime."""
        if value is None:
            return None
        assert isinstance(value, datetime)
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
    Column("dunning_paused_until", UtcDateTime),  # version 5
    Column("segment", String),  # version 5
    Index("ix_accounts_paused_id", "dunning_paused_until", "id"),  # version 7 (see migrations.V7_REPLACED)
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
    # "YYYY-MM" of a card's expiry, computed at import so expiring cards are found by index (version 5).
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
    Column("hosted_invoice_url", Text),  # version 10: the billing system's own payment page, when it has one
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
    Column("delivered", Text),  # version 3, JSON: recipients that accepted the message (never sent it again)
    # Version 4. Set just before the message data goes out under the current claim (on SQLite, when a flight log
    # that says so is replayed): only such an email can be in doubt after a crash; one claimed without
    # it goes back to the queue when its lease runs out.
    Column("data_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_emails_claimable", "id", postgresql_where=text(CLAIMABLE), sqlite_where=text(CLAIMABLE)),
    Index("ix_emails_status_lease", "status", "lease_until"),
)

# What an email is rendered from, written once with its emails row (version 2). It has a table of its
# own because every claim and every outcome rewrites the emails row: with one to two kilobytes of JSON
# inside, those writes would copy it each time, and the claims and outcomes of a run would write ten times the
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
    # The as_of of the run that recorded the key (version 5): balance_settled counts from it, so that
    # --as-of runs and back-fills decide as live ones do.
    Column("as_of", UtcDateTime),
    Index("ix_notices_notice_as_of", "notice", "as_of"),
)

# Bounces (schema version 6). An address is kept lower-cased: mailbox providers match it without case.
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
    Column("kind", String, nullable=False),  # hard | soft | ours (the sending side's: never suppresses)
    Column("email_id", Integer, nullable=False),
    Column("account_id", String, nullable=False),
    Column("status", String),  # RFC 3463 status code, e.g. 5.1.1
    Column("diagnostic", Text),
    Column("message_key", String, nullable=False),
    Column("bounced_at", UtcDateTime, nullable=False),
    Column("reason", String),  # version 9: userunknown, mailboxfull, blocked, … (docs/bounces.md)
    Index("ix_bounces_address_at", "address", "bounced_at"),
)

# Every bounce message ingested, by Message-ID or content digest: ingesting one twice changes nothing.
bounce_messages = Table(
    "bounce_messages", metadata,
    Column("key", String, primary_key=True),
    Column("outcome", String, nullable=False),  # hard | soft | ours | feedback | autoreply | delivered | unparsed | …
    Column("email_id", Integer),
    Column("ingested_at", UtcDateTime, nullable=False),
)

# Billing sources (schema version 8): what each source keeps between syncs, by key (a source's event
# cursor), and the ids of the source events already applied, by a sync or a webhook.
source_state = Table(
    "source_state", metadata,
    Column("key", String, primary_key=True),  # "<source>.<name>", e.g. stripe.event_cursor
    Column("value", Text, nullable=False),
)

source_events = Table(
    "source_events", metadata,
    Column("id", String, primary_key=True),  # the source's event id
    Column("source", String, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    Index("ix_source_events_seen_at", "seen_at"),
)

# Version 10: when each group's balance changed (import and sync, dated by their --as-of), so that a
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
