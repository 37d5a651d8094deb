"""The notice ledger and outbox: enqueue, claim, record, reconcile. Never twice lives here.

One module per job: enqueue (planned notices in, a key never twice), claims (leases and fences),
outcomes (what became of each email), reconcile (what a run cannot settle alone), keys (what the
planner reads back).
"""

from __future__ import annotations

from dunning.ledger.claims import Claim, claim, expire_leases, extend_leases, lapsed_workers, outbox_due, unclaim
from dunning.ledger.enqueue import EnqueueCounts, OutboxEntry, enqueue
from dunning.ledger.keys import KeyHistory, key_history
from dunning.ledger.outcomes import RecordCounts, Result, impatient_connection, record, try_record
from dunning.ledger.reconcile import (
    QueueState,
    RefusedRecipient,
    UnknownEmail,
    list_refused,
    list_unknown,
    mark_sent,
    queue_state,
    release,
    summary,
)

__all__ = ["OutboxEntry", "EnqueueCounts", "enqueue", "KeyHistory", "key_history", "Claim", "claim",
           "extend_leases", "unclaim", "lapsed_workers", "outbox_due", "expire_leases", "Result", "RecordCounts",
           "record", "try_record", "impatient_connection", "UnknownEmail", "list_unknown", "RefusedRecipient",
           "list_refused", "mark_sent", "release", "summary", "QueueState", "queue_state"]
