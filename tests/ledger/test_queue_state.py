"""The queue's state after a run: retries waiting for later, unknown emails held for reconcile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dunning import ledger
from dunning.ledger import QueueState, Result

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_queue_state_counts_retries_due_later_and_unknown_emails(engine, sends):
    """A retry counts as waiting until it comes due; an unknown email counts as held until it is reconciled."""
    ledger.enqueue(engine, sends(5), now=T0)
    first, second, third, fourth, _queued = ledger.claim(engine, worker="w", limit=5, now=T0, lease_seconds=60)
    ledger.record(engine, [Result(first.email_id, first.fence, "retry"), Result(second.email_id, second.fence, "sent"),
                           Result(third.email_id, third.fence, "unknown")],
                  now=T0, max_attempts=5, backoff_seconds=100)
    ledger.unclaim(engine, [_queued], now=T0)
    assert ledger.queue_state(engine, now=T0) == QueueState(waiting=1, held=1)
    # `fourth` had its data under way when its claim lapsed: it becomes unknown, held too.
    ledger.record(engine, [], now=T0, max_attempts=5, backoff_seconds=100,
                  in_flight=[(fourth.email_id, fourth.fence)])
    ledger.expire_leases(engine, now=T0 + timedelta(seconds=61), unknown_policy="hold")
    assert ledger.queue_state(engine, now=T0 + timedelta(seconds=61)) == QueueState(waiting=1, held=2)
    assert ledger.queue_state(engine, now=T0 + timedelta(seconds=101)) == QueueState(waiting=0, held=2)
    ledger.mark_sent(engine, [third.email_id, fourth.email_id], now=T0)
    assert ledger.queue_state(engine, now=T0) == QueueState(waiting=1, held=0)
