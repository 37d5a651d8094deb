"""Claim and record: leases, fences, retries with backoff, and outcomes that stay final."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dunning import ledger, store
from dunning.ledger import RecordCounts, Result

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LEASE = 60


def row(engine, email_id: int):
    with engine.connect() as conn:
        return conn.execute(select(store.emails).where(store.emails.c.id == email_id)).one()


def claim(engine, at=T0, *, worker="w1", limit=100):
    return ledger.claim(engine, worker=worker, limit=limit, now=at, lease_seconds=LEASE)


def record(engine, results, at=T0, *, max_attempts=3, backoff=100):
    return ledger.record(engine, results, now=at, max_attempts=max_attempts, backoff_seconds=backoff)


def test_claim_takes_queued_emails_under_a_lease(engine, sends):
    """A claim marks queued emails sending for its worker, bumps the fence and sets the lease, oldest first."""
    ledger.enqueue(engine, sends(5), now=T0)
    first = claim(engine, limit=3)
    assert [c.email_id for c in first] == sorted(c.email_id for c in first)
    assert [c.fence for c in first] == [1, 1, 1] and [c.attempts for c in first] == [0, 0, 0]
    taken = row(engine, first[0].email_id)
    assert (taken.status, taken.worker, taken.lease_until) == ("sending", "w1", T0 + timedelta(seconds=LEASE))
    rest = claim(engine, worker="w2")
    assert len(rest) == 2 and not {c.email_id for c in rest} & {c.email_id for c in first}
    assert claim(engine) == []
    assert ledger.summary(engine)["sending"] == 5


def test_sent_is_recorded_and_never_claimed_again(engine, sends):
    """A sent outcome keeps its SMTP reply and code, ends the lease, and the email is never claimed again."""
    ledger.enqueue(engine, sends(1), now=T0)
    (taken,) = claim(engine)
    refused = {"cc@example.com": [550, "no such user"]}
    counts = record(engine, [Result(taken.email_id, taken.fence, "sent", code=250, reply="2.0.0 queued as X",
                                    refused=refused)])
    assert counts == RecordCounts(sent=1)
    done = row(engine, taken.email_id)
    assert (done.status, done.code, done.reply, done.attempts, done.lease_until) == (
        "sent", 250, "2.0.0 queued as X", 1, None)
    assert json.loads(done.refused) == refused
    assert claim(engine, T0 + timedelta(days=30)) == []
    assert record(engine, [Result(taken.email_id, taken.fence, "retry")]) == RecordCounts(fenced_out=1)


def test_retry_backs_off_exponentially_then_fails_at_the_cap(engine, sends):
    """Retries wait backoff, then twice as long; the attempt that reaches max_attempts is failed for good."""
    ledger.enqueue(engine, sends(1), now=T0)
    now = T0
    for attempt, wait in ((1, 100), (2, 200)):
        (taken,) = claim(engine, now)
        assert taken.attempts == attempt - 1
        assert record(engine, [Result(taken.email_id, taken.fence, "retry", code=451, reply="try later")],
                      now) == RecordCounts(retry=1)
        waiting = row(engine, taken.email_id)
        assert (waiting.status, waiting.attempts) == ("retry", attempt)
        assert waiting.next_attempt_at == now + timedelta(seconds=wait)
        assert claim(engine, now + timedelta(seconds=wait - 1)) == []
        now += timedelta(seconds=wait)
    (taken,) = claim(engine, now)
    assert record(engine, [Result(taken.email_id, taken.fence, "retry", code=451, reply="try later")],
                  now) == RecordCounts(failed=1)
    failed = row(engine, taken.email_id)
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.error.startswith("gave up after 3 attempts")
    assert claim(engine, now + timedelta(days=365)) == []


def test_failed_and_unknown_outcomes_are_never_claimed(engine, sends):
    """A permanent failure and an unknown outcome stay put: no later claim takes them under hold."""
    ledger.enqueue(engine, sends(2), now=T0)
    a, b = claim(engine)
    counts = record(engine, [Result(a.email_id, a.fence, "failed", code=550, reply="no such user"),
                             Result(b.email_id, b.fence, "unknown", error="connection lost after DATA")])
    assert counts == RecordCounts(failed=1, unknown=1)
    later = T0 + timedelta(days=10)
    assert ledger.expire_leases(engine, now=later, unknown_policy="hold") == 0
    assert claim(engine, later) == []
    assert [u.email_id for u in ledger.list_unknown(engine)] == [b.email_id]


def test_record_counts_each_outcome_of_a_mixed_batch(engine, sends):
    """One record call writes a batch of mixed outcomes and counts each kind, including fenced-out ones."""
    ledger.enqueue(engine, sends(5), now=T0)
    c = claim(engine)
    results = [Result(c[0].email_id, c[0].fence, "sent"), Result(c[1].email_id, c[1].fence, "retry"),
               Result(c[2].email_id, c[2].fence, "failed"), Result(c[3].email_id, c[3].fence, "unknown"),
               Result(c[4].email_id, c[4].fence + 1, "sent"), Result(999_999, 1, "sent")]
    assert record(engine, results) == RecordCounts(sent=1, retry=1, failed=1, unknown=1, fenced_out=2)
    assert row(engine, c[4].email_id).status == "sending"


def test_a_retry_is_claimed_again_at_the_very_moment_its_backoff_ends(engine, sends):
    """The outcome's moments are stored in the form the claim compares them in: a retry due at a moment with
    microseconds is claimed at that moment, not one after it."""
    ledger.enqueue(engine, sends(1), now=T0)
    (taken,) = claim(engine)
    at = T0 + timedelta(seconds=1, microseconds=123_456)
    record(engine, [Result(taken.email_id, taken.fence, "retry", code=451, reply="4.7.1 later")], at, backoff=100)
    due = at + timedelta(seconds=100)
    assert row(engine, taken.email_id).next_attempt_at == due
    assert claim(engine, due - timedelta(microseconds=1)) == []
    assert [c.email_id for c in claim(engine, due)] == [taken.email_id]
