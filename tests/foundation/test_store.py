"""The store: its versioned schema (fresh and upgraded databases alike) and its batch lookups."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, create_engine, inspect, select, text

from dunning import ledger, store
from dunning.errors import SettingsError
from dunning.store import sqlite as store_sqlite

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PAYLOAD = {"to": ["billing@example.com"], "cc": [], "locale": "fr-FR", "context": {"name": "Zoë « SARL »"}}


def _columns(engine, table: str) -> list[str]:
    return [column["name"] for column in inspect(engine).get_columns(table)]


def _at_version_1(url: str):
    """A database as version 1 of the schema left it, with one queued email (its payload in its row)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        store.schema_version.create(conn)
        store.MIGRATIONS[0](conn, store.backend_of(conn))
        conn.execute(store.schema_version.insert().values(version=1))
        conn.execute(text(
            "INSERT INTO emails (account_id, payment_method_id, notice, stage, locale, status, attempts, fence, "
            "message_id, payload, resent, created_at, updated_at) VALUES ('acct_1', 'pm_1', 'past_due', 1, "
            "'fr-FR', 'queued', 0, 0, '<past_due.1@billing.example>', :payload, false, :now, :now)"),
            {"payload": json.dumps(PAYLOAD, ensure_ascii=False), "now": T0.replace(tzinfo=None)})
    engine.dispose()


def test_a_version_1_outbox_is_upgraded_with_its_payloads(database_url):
    """Upgrading moves each queued email's payload to email_payloads; the email is then claimed with it."""
    _at_version_1(database_url)
    engine = store.connect(database_url)
    assert store.upgrade(engine) == store.SCHEMA_VERSION
    assert "payload" not in _columns(engine, "emails")
    (claimed,) = ledger.claim(engine, worker="w", limit=10, now=T0, lease_seconds=60)
    assert (claimed.account, claimed.message_id, claimed.payload) == ("acct_1", "<past_due.1@billing.example>",
                                                                      PAYLOAD)


def test_a_fresh_database_has_the_tables_an_upgraded_one_has(tmp_path):
    """Same tables and columns, whether created at the current version or upgraded from version 1."""
    fresh, upgraded = (f"sqlite:///{tmp_path / name}" for name in ("fresh.sqlite3", "upgraded.sqlite3"))
    _at_version_1(upgraded)
    engines = [store.connect(fresh), store.connect(upgraded)]
    tables = [sorted(inspect(engine).get_table_names()) for engine in engines]
    assert tables[0] == tables[1] and "email_payloads" in tables[0]
    for table in tables[0]:
        assert sorted(_columns(engines[0], table)) == sorted(_columns(engines[1], table)), table
    with engines[0].connect() as conn:
        assert conn.execute(select(store.schema_version.c.version)).scalar() == store.SCHEMA_VERSION


def test_a_database_newer_than_this_dunning_is_refused(sqlite_url):
    engine = store.connect(sqlite_url)
    with engine.begin() as conn:
        conn.execute(store.schema_version.update().values(version=store.SCHEMA_VERSION + 1))
    with pytest.raises(SettingsError, match="newer than this dunning"):
        store.connect(sqlite_url)


def test_a_sqlite_too_old_for_the_ledger_is_named(sqlite_url, monkeypatch):
    """Before SQLite 3.35 (no RETURNING, no DROP COLUMN) the error says so instead of failing on SQL."""
    monkeypatch.setattr(store_sqlite.sqlite3, "sqlite_version_info", (3, 34, 1))
    with pytest.raises(SettingsError, match=r"SQLite is 3\.34\.1; dunning needs 3\.35 or newer"):
        store.connect(sqlite_url)


def test_an_email_dropped_at_enqueue_leaves_no_payload(database_url):
    """An email whose key another run already holds is dropped with nothing of it left behind."""
    engine = store.connect(database_url)
    first = ledger.OutboxEntry(account="acct_1", payment_method="pm_1", notice="past_due", stage=1,
                               locale="fr-FR", status="send", keys=("k1",), message_id="<a@billing.example>",
                               payload=PAYLOAD)
    ledger.enqueue(engine, [first], now=T0)
    again = ledger.OutboxEntry(**{**{f: getattr(first, f) for f in first.__slots__},
                                  "keys": ("k1", "k2"), "message_id": "<b@billing.example>"})
    counts = ledger.enqueue(engine, [again], now=T0)
    assert (counts.emails, counts.conflicts) == (0, 1)
    with engine.connect() as conn:
        ids = conn.execute(select(store.emails.c.id)).scalars().all()
        payload_ids = conn.execute(select(store.email_payloads.c.email_id)).scalars().all()
    assert len(ids) == 1 and payload_ids == ids


def test_among_matches_exactly_the_listed_values(database_url):
    """Text and integer columns; quotes, backslashes and non-ASCII ids; an empty list matches nothing."""
    engine = store.connect(database_url)
    names = ["acct_'1", 'acct_"2', "acct_\\3", "acct_é4", "acct_5"]
    with engine.begin() as conn:
        conn.execute(store.accounts.insert(), [
            {"id": name, "name": name, "email": "a@example.com", "locale": "en", "timezone": "UTC",
             "content_hash": "x"} for name in names])
    with engine.connect() as conn:
        def ids(values):
            return sorted(conn.execute(select(store.accounts.c.id)
                                       .where(store.among(conn, store.accounts.c.id, values))).scalars())
        assert ids(names[:4] + ["acct_unknown"]) == sorted(names[:4])
        assert ids([]) == []
        found = conn.execute(select(store.schema_version.c.version).where(
            store.among(conn, store.schema_version.c.version, [store.SCHEMA_VERSION, 99]))).scalars().all()
        assert found == [store.SCHEMA_VERSION]


@contextmanager
def _migrated_to(url: str, version: int) -> Iterator[Connection]:
    """A transaction on a database the first `version` migrations made (the caller takes back what later
    versions added to the tables _v1 creates as they are today)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        store.schema_version.create(conn)
        for migration in store.MIGRATIONS[:version]:
            migration(conn, store.backend_of(conn))
        conn.execute(store.schema_version.insert().values(version=version))
        yield conn
    engine.dispose()


def _at_version_2_as_it_was(url: str) -> None:
    """A database as version 2 left it: no pause, segment, expiry month or recorded as_of; one card, one key."""
    with _migrated_to(url, 2) as conn:
        for index in ("ix_accounts_paused_id", "ix_payment_methods_expiry_card", "ix_notices_notice_as_of"):
            conn.execute(text(f"DROP INDEX {index}"))
        for table, column in (("accounts", "dunning_paused_until"), ("accounts", "segment"),
                              ("payment_methods", "expiry_month"), ("notices", "as_of")):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("INSERT INTO accounts (id, name, email, cc, locale, timezone, content_hash) "
                          "VALUES ('acct_1', 'A', 'a@example.com', '[]', 'fr-FR', 'Europe/Paris', 'abc')"))
        conn.execute(text("INSERT INTO payment_methods (id, account_id, type, exp_month, exp_year) "
                          "VALUES ('pm_1', 'acct_1', 'card', 3, 2027)"))
        conn.execute(text("INSERT INTO notices (key, account_id, notice, outcome, created_at) "
                          "VALUES ('k1', 'acct_1', 'past_due', 'skipped', :now)"), {"now": T0.replace(tzinfo=None)})


def test_version_3_fills_in_what_version_2_did_not_keep(database_url):
    """Upgrading computes each card's expiry month, dates old keys at their creation, and forces a re-import."""
    _at_version_2_as_it_was(database_url)
    engine = store.connect(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(store.payment_methods.c.expiry_month)).scalar() == "2027-03"
        assert conn.execute(select(store.notices.c.as_of)).scalar() == T0
        assert conn.execute(select(store.accounts.c.content_hash)).scalar() == ""
    index_names = {index["name"] for index in inspect(engine).get_indexes("payment_methods")}
    assert "ix_payment_methods_expiry_card" in index_names


def _indexes(engine) -> dict[str, dict[str, list]]:
    return {table: {index["name"]: index["column_names"] for index in inspect(engine).get_indexes(table)}
            for table in inspect(engine).get_table_names()}


def test_version_7_replaces_the_candidate_indexes_with_covering_ones(database_url, tmp_path):
    """A version 6 database gets the indexes a fresh one has, and loses the five they replace."""
    with _migrated_to(database_url, 6) as conn:
        for table, old, columns in (("accounts", "ix_accounts_paused", "dunning_paused_until"),
                                    ("payment_methods", "ix_payment_methods_expiry", "expiry_month"),
                                    ("subscriptions", "ix_subscriptions_cancelled", "cancel_reason, cancelled_at"),
                                    ("invoices", "ix_invoices_owed_due", "owed, due_date"),
                                    ("charges", "ix_charges_outcome_attempted", "outcome, attempted_at")):
            (new,) = (name for name in store.V7_REPLACED.values() if name.startswith(old))
            conn.execute(text(f"DROP INDEX {new}"))
            conn.execute(text(f"CREATE INDEX {old} ON {table} ({columns})"))
    upgraded = store.connect(database_url)
    fresh = store.connect(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    assert _indexes(upgraded) == _indexes(fresh)
    assert _indexes(upgraded)["invoices"]["ix_invoices_owed_due_account"] == ["owed", "due_date", "account_id"]
    assert not set(store.V7_REPLACED) & {name for names in _indexes(upgraded).values() for name in names}
