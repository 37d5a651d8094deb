"""A ledger client in its own process, for the concurrency tests.

Usage: worker.py GO READY enqueue URL N BATCH ORDER  enqueue the notices of accounts 0..N-1, BATCH per call,
                                                     in ORDER (asc or desc)
       worker.py GO READY claim URL NAME LIMIT       claim until the queue is empty; print each id claimed
It connects, writes READY, waits for GO to exist, then works, so that every worker starts at once.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from dunning import ledger, store

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def entries(n: int) -> list[ledger.OutboxEntry]:
    return [ledger.OutboxEntry(account=f"acct_{i}", payment_method=f"pm_{i}", notice="past_due", stage=1,
                               locale="fr-FR", status="send", keys=(f"past_due:acct_{i}:pm_{i}:2026-11-01:1",),
                               message_id=f"<past_due.{i}@billing.example>", payload={"i": i})
            for i in range(n)]


def enqueue(engine, n: str, batch: str, order: str) -> None:
    planned, size = entries(int(n))[::1 if order == "asc" else -1], int(batch)
    for start in range(0, len(planned), size):
        print(ledger.enqueue(engine, planned[start:start + size], now=NOW).emails)


def claim(engine, name: str, limit: str) -> None:
    while claims := ledger.claim(engine, worker=name, limit=int(limit), now=NOW, lease_seconds=300):
        print("\n".join(str(c.email_id) for c in claims), flush=True)
        time.sleep(0.002)  # as if sending: lets the other workers take their turn


def main(go: str, ready: str, command: str, url: str, *args: str) -> None:
    engine = store.connect(url, migrate=False)
    with engine.connect():
        pass
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.001)
    {"enqueue": enqueue, "claim": claim}[command](engine, *args)


if __name__ == "__main__":
    main(*sys.argv[1:])
