"""Enqueue: planned notices enter the ledger once, whatever runs overlap."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from dunning import ledger, store
from dunning.ledger import EnqueueCounts, OutboxEntry

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def keys_only(status: str, key: str, account: str = "acct_0") -> OutboxEntry:
    return OutboxEntry(account=account, payment_method="pm_0", notice="card_charge_failed", stage=None,
                       locale="fr-FR", status=status, keys=(key,))


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_enqueue_twice_adds_nothing_the_second_time(engine, sends):
    """The same planned emails enqueued twice give one email and one key each."""
    first = ledger.enqueue(engine, sends(50), now=T0)
    again = ledger.enqueue(engine, sends(50), now=T0)
    assert first == EnqueueCounts(emails=50, keys=50)
    assert again == EnqueueCounts(emails=0, keys=0, held=50)
    assert count(engine, store.emails) == 50 and count(engine, store.notices) == 50
    assert ledger.summary(engine)["queued"] == 50


def test_skipped_and_superseded_record_keys_without_email(engine, send):
    """Skipped and superseded notices hold their keys but add no email; the ledger holds every key."""
    planned = [send(0), keys_only("skipped", "past_due:acct_0:pm_0:2026-11-01:0"),
               keys_only("superseded", "card_charge_failed:acct_0:pm_0:ch_9")]
    assert ledger.enqueue(engine, planned, now=T0) == EnqueueCounts(emails=1, keys=3)
    assert ledger.enqueue(engine, planned, now=T0) == EnqueueCounts(held=3)
    with engine.connect() as conn:
        assert ledger.key_history(conn, ["acct_0", "acct_9"]).handled == {
            "past_due:acct_0:pm_0:2026-11-01:1", "past_due:acct_0:pm_0:2026-11-01:0",
            "card_charge_failed:acct_0:pm_0:ch_9"}
        outcomes = dict(conn.execute(select(store.notices.c.key, store.notices.c.outcome)).all())
    assert sorted(outcomes.values()) == ["email", "skipped", "superseded"]
    assert count(engine, store.emails) == 1
    summary = ledger.summary(engine)
    assert (summary["skipped"], summary["superseded"], summary["queued"]) == (1, 1, 1)


def test_email_whose_keys_are_partly_held_is_dropped_and_its_free_keys_stay_free(engine, send):
    """An email naming a key another run holds is not enqueued; its other keys stay free for the next plan."""
    ledger.enqueue(engine, [send(0, keys=("pending_deletion:sub_1:1", "pending_deletion:sub_2:1"))], now=T0)
    later = send(1, keys=("pending_deletion:sub_2:1", "pending_deletion:sub_3:1"))
    assert ledger.enqueue(engine, [later], now=T0) == EnqueueCounts(conflicts=1)
    with engine.connect() as conn:
        held = ledger.key_history(conn, ["acct_0", "acct_1"]).handled
    assert held == {"pending_deletion:sub_1:1", "pending_deletion:sub_2:1"}
    assert count(engine, store.emails) == 1
    alone = send(2, keys=("pending_deletion:sub_3:1",))
    assert ledger.enqueue(engine, [alone], now=T0) == EnqueueCounts(emails=1, keys=1)


def test_a_batch_meeting_a_held_key_writes_each_free_key_once_and_leaves_the_held_one(engine, send):
    """A key another run holds, in a batch of free ones: the others are written once, the held one as it was."""
    later = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    ledger.enqueue(engine, [keys_only("skipped", "k1")], now=T0)
    batch = [send(0), keys_only("skipped", "k1"), keys_only("superseded", "k2")]
    assert ledger.enqueue(engine, batch, now=later) == EnqueueCounts(emails=1, keys=2, held=1)
    with engine.connect() as conn:
        rows = conn.execute(select(store.notices.c.key, store.notices.c.outcome, store.notices.c.created_at,
                                   store.notices.c.email_id).order_by(store.notices.c.key)).all()
    (email_id,) = {row.email_id for row in rows if row.outcome == "email"}
    assert [(key, outcome, at) for key, outcome, at, _ in rows] == [
        ("k1", "skipped", T0), ("k2", "superseded", later), (send(0).keys[0], "email", later)]
    assert count(engine, store.emails) == 1 and count(engine, store.email_payloads) == 1
    assert ledger.claim(engine, worker="w", limit=10, now=later, lease_seconds=60)[0].email_id == email_id


def test_a_batch_of_free_keys_writes_them_in_one_insert_never_undone(engine, sends):
    """Free keys (what a run meets): one INSERT of the keys, no savepoint rolled back, no second insert."""
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert ledger.enqueue(engine, sends(20), now=T0) == EnqueueCounts(emails=20, keys=20)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statements.count("INSERT INTO notices") == 1
    assert not [statement for statement in statements if statement.startswith("ROLLBACK")]


def test_within_one_batch_the_first_entry_naming_a_key_wins(engine, send):
    """Two entries of one batch naming the same key: the first keeps it, the second adds nothing."""
    first, second = send(0, keys=("k",)), send(1, keys=("k",))
    assert ledger.enqueue(engine, [first, second], now=T0) == EnqueueCounts(emails=1, keys=1, held=1)
    (claimed,) = ledger.claim(engine, worker="w", limit=10, now=T0, lease_seconds=60)
    assert claimed.message_id == first.message_id


def test_each_email_keeps_its_keys_and_payload(engine, send):
    """Keys point at their own email, and the JSON payload comes back from a claim exactly as it went in."""
    payload = {"to": ["a@example.com"], "balance": [{"currency": "EUR", "amount": "1234.50"}],
               "due": "2026-11-01", "name": "Contoso <SARL> & \"Co\" 🚀 شركة\r\n", "nothing": None, "n": 3,
               "ok": True, "ratio": 0.5}
    ledger.enqueue(engine, [send(0, payload=payload), send(1, keys=("a", "b"))], now=T0)
    with engine.connect() as conn:
        rows = conn.execute(select(store.notices.c.key, store.emails.c.message_id)
                            .join(store.emails, store.emails.c.id == store.notices.c.email_id)).all()
    assert sorted(rows) == [("a", "<past_due.1@billing.example>"), ("b", "<past_due.1@billing.example>"),
                            ("past_due:acct_0:pm_0:2026-11-01:1", "<past_due.0@billing.example>")]
    claimed = ledger.claim(engine, worker="w", limit=10, now=T0, lease_seconds=60)
    assert claimed[0].payload == payload
    assert (claimed[0].account, claimed[0].notice, claimed[0].stage, claimed[0].locale,
            claimed[0].payment_method) == ("acct_0", "past_due", 1, "fr-FR", "pm_0")


def test_invalid_entries_are_refused_and_leave_nothing(engine, send):
    """No Message-ID, a deferred notice, a shared Message-ID or a non-JSON payload: the batch enqueues nothing."""
    no_id = OutboxEntry("acct_0", "pm_0", "past_due", 1, "fr", "send", ("k",), None, {})
    deferred = OutboxEntry("acct_0", "pm_0", "past_due", 1, "fr", "deferred", ("k2",))
    twins = [send(0), send(1, keys=("other",))]
    twins[1] = OutboxEntry(**{**{f: getattr(twins[1], f) for f in OutboxEntry.__slots__},
                              "message_id": twins[0].message_id})
    not_json = send(6, payload={"total": Decimal("1.50")})
    for batch in ([send(5), no_id], [send(5), deferred], twins, [send(5), not_json]):
        with pytest.raises((ValueError, TypeError)):
            ledger.enqueue(engine, batch, now=T0)
    assert count(engine, store.emails) == 0 and count(engine, store.notices) == 0


def test_a_large_batch_goes_in_one_call(engine, sends):
    """A batch of 2,000 emails is enqueued in one call, one email and one key each."""
    assert ledger.enqueue(engine, sends(2000), now=T0) == EnqueueCounts(emails=2000, keys=2000)
    assert ledger.enqueue(engine, sends(2500), now=T0) == EnqueueCounts(emails=500, keys=500, held=2000)


def test_two_processes_enqueue_the_same_notices_once(engine, database_url, run_workers):
    """Two runs enqueueing the same 600 notices at once, in opposite orders and batches, enqueue each once."""
    outputs = run_workers(["enqueue", database_url, "600", "100", "asc"],
                          ["enqueue", database_url, "600", "70", "desc"])
    assert sum(int(n) for out in outputs for n in out) == 600
    assert count(engine, store.emails) == 600 and count(engine, store.notices) == 600
    with engine.connect() as conn:
        per_key = conn.execute(select(store.emails.c.message_id, func.count())
                               .group_by(store.emails.c.message_id)).all()
    assert len(per_key) == 600 and {n for _, n in per_key} == {1}
