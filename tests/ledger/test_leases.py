"""Leases and fences: crashed workers, stalled workers, and many workers sharing one queue."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dunning import ledger, store
from dunning.ledger import RecordCounts, Result

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LEASE = 60
EXPIRED = T0 + timedelta(seconds=LEASE + 1)


def row(engine, email_id: int):
    with engine.connect() as conn:
        return conn.execute(select(store.emails).where(store.emails.c.id == email_id)).one()


def claim(engine, at=T0, *, worker="w1", limit=100, data_sent=True):
    """Claim due emails; with data_sent, also mark their data as gone out (as a send does before the data)."""
    claims = ledger.claim(engine, worker=worker, limit=limit, now=at, lease_seconds=LEASE)
    if data_sent:
        data_goes_out(engine, claims, at)
    return claims


def data_goes_out(engine, claims, at):
    """Record, as a send does before the data, that these claims' data goes out."""
    ledger.record(engine, [], now=at, max_attempts=3, backoff_seconds=100,
                  in_flight=[(c.email_id, c.fence) for c in claims])


def record(engine, results, at=T0):
    return ledger.record(engine, results, now=at, max_attempts=3, backoff_seconds=100)


def test_expired_leases_become_unknown_and_are_held(engine, sends):
    """Under hold, a sending email whose lease ran out becomes unknown and is reported, not sent again."""
    ledger.enqueue(engine, sends(2), now=T0)
    crashed = claim(engine)
    assert ledger.expire_leases(engine, now=T0 + timedelta(seconds=LEASE - 1), unknown_policy="hold") == 0
    assert ledger.expire_leases(engine, now=EXPIRED, unknown_policy="hold") == 2
    assert ledger.expire_leases(engine, now=EXPIRED, unknown_policy="hold") == 0
    assert claim(engine, EXPIRED + timedelta(days=1)) == []
    unknown = ledger.list_unknown(engine)
    assert [u.email_id for u in unknown] == [c.email_id for c in crashed]
    assert unknown[0].since == EXPIRED and unknown[0].worker == "w1"
    assert unknown[0].keys == ("past_due:acct_0:pm_0:2026-11-01:1",)
    assert unknown[0].message_id == "<past_due.0@billing.example>"


def test_claimed_emails_whose_data_never_went_out_go_back_to_the_queue(engine, sends):
    """A crashed worker's claims whose data never went out are queued again when the lease runs out; only
    the one whose data was under way is unknown."""
    ledger.enqueue(engine, sends(3), now=T0)
    started, *unstarted = claim(engine, data_sent=False)
    data_goes_out(engine, [started], T0)
    assert ledger.expire_leases(engine, now=EXPIRED, unknown_policy="hold") == 1
    assert [u.email_id for u in ledger.list_unknown(engine)] == [started.email_id]
    assert [row(engine, c.email_id).status for c in unstarted] == ["queued", "queued"]
    again = claim(engine, EXPIRED, worker="w2")
    assert sorted(c.email_id for c in again) == sorted(c.email_id for c in unstarted)
    assert all(c.attempts == 0 for c in again)


def test_a_mark_of_a_claim_taken_over_changes_nothing(engine, sends):
    """The old holder's in-flight mark is fenced out once the email was claimed again."""
    ledger.enqueue(engine, sends(1), now=T0)
    (old,) = claim(engine, data_sent=False)
    ledger.expire_leases(engine, now=EXPIRED, unknown_policy="hold")
    (new,) = claim(engine, EXPIRED, worker="w2", data_sent=False)
    data_goes_out(engine, [old], EXPIRED)
    assert row(engine, new.email_id).data_at is None


def test_resend_requeues_unknown_once_with_the_same_message_id(engine, sends):
    """Under resend, an unknown email is queued again exactly once, keeping its Message-ID."""
    ledger.enqueue(engine, sends(1), now=T0)
    (first,) = claim(engine)
    assert ledger.expire_leases(engine, now=EXPIRED, unknown_policy="resend") == 1
    assert row(engine, first.email_id).status == "queued"
    (again,) = claim(engine, EXPIRED, worker="w2")
    assert (again.email_id, again.message_id, again.fence) == (first.email_id, first.message_id, 2)
    later = EXPIRED + timedelta(seconds=LEASE + 1)
    assert ledger.expire_leases(engine, now=later, unknown_policy="resend") == 1
    assert row(engine, first.email_id).status == "unknown"
    assert claim(engine, later + timedelta(days=1)) == []


def test_a_stalled_worker_cannot_record_over_the_new_owner(engine, sends):
    """Once a row is claimed again, the outcome of its old holder changes nothing and is counted fenced out."""
    ledger.enqueue(engine, sends(1), now=T0)
    (stalled,) = claim(engine)
    ledger.expire_leases(engine, now=EXPIRED, unknown_policy="resend")
    (owner,) = claim(engine, EXPIRED, worker="w2")
    assert record(engine, [Result(stalled.email_id, stalled.fence, "failed", code=550)],
                  EXPIRED) == RecordCounts(fenced_out=1)
    assert row(engine, owner.email_id).status == "sending"
    assert record(engine, [Result(owner.email_id, owner.fence, "sent", code=250)], EXPIRED) == RecordCounts(sent=1)
    done = row(engine, owner.email_id)
    assert (done.status, done.worker, done.code, done.fence) == ("sent", "w2", 250, 2)


def test_a_late_outcome_resolves_an_unknown_nobody_took_over(engine, sends):
    """Under hold, the late outcome of the lease holder still replaces unknown, since nobody claimed it since."""
    ledger.enqueue(engine, sends(2), now=T0)
    late, released = claim(engine)
    ledger.expire_leases(engine, now=EXPIRED, unknown_policy="hold")
    assert ledger.release(engine, [released.email_id], now=EXPIRED) == 1
    counts = record(engine, [Result(late.email_id, late.fence, "sent", code=250),
                             Result(released.email_id, released.fence, "sent", code=250)], EXPIRED)
    assert counts == RecordCounts(sent=1, fenced_out=1)
    assert (row(engine, late.email_id).status, row(engine, released.email_id).status) == ("sent", "queued")
    assert ledger.list_unknown(engine) == []


def test_extending_a_lease_keeps_the_row_from_expiring(engine, sends):
    """A worker that extends its lease keeps its rows; a worker that lost them extends nothing."""
    ledger.enqueue(engine, sends(2), now=T0)
    held = claim(engine)
    assert ledger.extend_leases(engine, held[:1], now=T0 + timedelta(seconds=50), lease_seconds=LEASE) == 1
    assert ledger.expire_leases(engine, now=EXPIRED, unknown_policy="hold") == 1
    assert row(engine, held[0].email_id).status == "sending"
    assert ledger.extend_leases(engine, held, now=EXPIRED, lease_seconds=LEASE) == 1


def test_two_processes_split_the_queue_without_overlap(engine, sends, database_url, run_workers):
    """Two worker processes claiming from one queue of 500 emails claim every email exactly once."""
    for start in range(0, 500, 250):
        ledger.enqueue(engine, sends(250, start), now=T0)
    first, second = run_workers(["claim", database_url, "w1", "5"], ["claim", database_url, "w2", "5"])
    assert first and second, "both workers should have taken part"
    assert not set(first) & set(second)
    assert len(first) + len(second) == 500
    with engine.connect() as conn:
        ids = set(conn.execute(select(store.emails.c.id)).scalars())
        workers = dict(conn.execute(select(store.emails.c.worker, store.emails.c.id)).all())
    assert {int(i) for i in first + second} == ids
    assert set(workers) == {"w1", "w2"}
    assert ledger.summary(engine)["sending"] == 500


def test_expiry_skips_a_row_being_written_instead_of_waiting(postgres_url, sends):
    """On PostgreSQL, expiring leases passes over a row another transaction holds rather than wait on it."""
    engine = store.connect(postgres_url)
    ledger.enqueue(engine, sends(2), now=T0)
    busy, idle = claim(engine)
    done = []
    with engine.connect() as other:
        other.execute(select(store.emails.c.id).where(store.emails.c.id == busy.email_id).with_for_update())
        expiry = threading.Thread(target=lambda: done.append(
            ledger.expire_leases(engine, now=EXPIRED, unknown_policy="hold")))
        expiry.start()
        expiry.join(timeout=10)
        other.rollback()
    expiry.join()
    assert done == [1]
    assert (row(engine, busy.email_id).status, row(engine, idle.email_id).status) == ("sending", "unknown")
    engine.dispose()
