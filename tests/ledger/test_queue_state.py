"""The queue's state after a run: retries waiting for later, unknown emails held for reconcile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dunning import ledger
from dunning.ledger import QueueState, Result
from tests.query_plans import table_steps

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


def test_the_outbox_is_due_while_a_run_has_something_to_claim_expire_or_send_again(engine, sends):
    """outbox_due says whether a run must check its templates and deliver: queued emails, retries come due,
    leases run out, and (under resend) unknown emails not yet sent again; nothing else."""
    def due(now: datetime, policy: str = "hold") -> bool:
        return ledger.outbox_due(engine, now=now, unknown_policy=policy)

    assert not due(T0, "resend")
    ledger.enqueue(engine, sends(3), now=T0)
    assert due(T0)
    retry, unknown, held = ledger.claim(engine, worker="w", limit=3, now=T0, lease_seconds=60)
    assert not due(T0), "held under a live lease: another process is sending them"
    assert due(T0 + timedelta(seconds=61)), "a lease ran out"
    ledger.record(engine, [Result(retry.email_id, retry.fence, "retry"), Result(unknown.email_id, unknown.fence,
                                                                                "unknown")],
                  now=T0, max_attempts=5, backoff_seconds=100)
    ledger.record(engine, [Result(held.email_id, held.fence, "sent")], now=T0, max_attempts=5, backoff_seconds=100)
    assert not due(T0 + timedelta(seconds=99)), "a retry due later and an unknown email held"
    assert due(T0 + timedelta(seconds=99), "resend"), "under resend an unknown email goes once more"
    assert due(T0 + timedelta(seconds=100)), "the retry came due"
    ledger.mark_sent(engine, [unknown.email_id], now=T0)
    (again,) = ledger.claim(engine, worker="w", limit=3, now=T0 + timedelta(seconds=100), lease_seconds=60)
    ledger.record(engine, [Result(again.email_id, again.fence, "sent")], now=T0, max_attempts=5, backoff_seconds=100)
    assert not due(T0 + timedelta(days=1), "resend")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # EXPLAIN QUERY PLAN is SQLite's
@pytest.mark.parametrize("policy", ["hold", "resend"])
def test_the_outbox_is_asked_whether_it_is_due_through_its_status_index(engine, policy):
    """Over a ledger of millions of sent emails, the question walks no row that is not a candidate."""
    (plan,) = table_steps(engine, lambda: ledger.outbox_due(engine, now=T0, unknown_policy=policy))
    assert plan[1:] and all(step.startswith("SEARCH emails USING INDEX") for step in plan[1:]), plan
