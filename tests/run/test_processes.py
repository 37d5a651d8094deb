"""Several `dunning run` processes on one database, and a run killed in the middle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlalchemy import select

from dunning import store
from dunning.delivery.capture import Fault
from dunning.run.clock import ShiftedClock
from tests.run.conftest import AS_OF_TEXT, expected_message_ids, load_sample, planned, received_ids, run

LEASE_SECONDS = 60


def _start_run() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dunning", "run", "--json", "--as-of", AS_OF_TEXT],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def test_two_runs_started_together_deliver_every_key_once(billing, smtp, capsys):
    """Two processes racing over the same database enqueue each key once and split the sending."""
    load_sample(billing, 150)
    plan = planned(capsys)
    first, second = _start_run(), _start_run()
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert [process.returncode for process in (first, second)] == [0, 0], outputs
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _err in outputs]
    ids = Counter(received_ids(smtp))
    assert set(ids) == expected_message_ids(plan) and set(ids.values()) == {1}
    assert sum(s["sent"] for s in summaries) == len(ids)


def test_killed_run_loses_nothing_and_sends_nothing_twice(billing, smtp, capsys, monkeypatch):
    """After SIGKILL mid-run, the next run sends what was claimed but not started; only emails whose data was
    under way (a handful) are unknown; nothing is received twice, across the kill either."""
    load_sample(billing, 150)
    plan = planned(capsys)
    smtp.add_fault(Fault("data", code=250, delay=0.05, times=None))
    monkeypatch.setenv("DUNNING_DELIVERY__LEASE_SECONDS", str(LEASE_SECONDS))
    victim = _start_run()
    smtp.wait_for(10, timeout=60)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    before_kill = set(received_ids(smtp))
    smtp.clear()
    clock = ShiftedClock()
    clock.advance(LEASE_SECONDS + 1)  # the killed run's leases have run out
    code, summary = run(capsys, clock=clock)
    with store.connect(billing).connect() as conn:
        rows = conn.execute(select(store.emails.c.message_id, store.emails.c.status)).all()
    statuses = Counter(status for _id, status in rows)
    assert set(statuses) <= {"sent", "failed", "unknown"}, statuses
    assert {message_id for message_id, _s in rows} == expected_message_ids(plan)
    # Only what was in flight is in doubt: at most one email per connection of each delivery process.
    assert summary["held"] == statuses["unknown"] <= 4 * 2 and code == (1 if statuses["unknown"] else 0)
    assert statuses["sent"] >= len(rows) - 8
    unknown = {message_id for message_id, status in rows if status == "unknown"}
    after_kill = Counter(received_ids(smtp))
    assert set(after_kill.values()) <= {1} and not (set(after_kill) & unknown)
    assert not set(after_kill) & before_kill  # what the killed run had sent is not sent again


def test_delivery_workers_share_the_queue(billing, smtp, capsys, monkeypatch):
    """With delivery.workers = 2 a second process sends part of the queue, and nothing is sent twice."""
    load_sample(billing, 300)
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "2")
    monkeypatch.setenv("DUNNING_DELIVERY__BATCH_SIZE", "20")
    smtp.add_fault(Fault("data", code=250, delay=0.05, times=None))
    code, summary = run(capsys)
    assert code == 0 and summary["sent"] == summary["planned"]
    with store.connect(billing).connect() as conn:
        workers = set(conn.execute(select(store.emails.c.worker)).scalars())
    assert len(workers) == 2
    assert set(Counter(received_ids(smtp)).values()) == {1}


def test_with_nothing_due_the_delivery_workers_stop_with_planning(billing, smtp, capsys, monkeypatch):
    """Helpers started with the run stop once planning is done and the queue is empty: a run with nothing
    left to send ends at once, having sent nothing."""
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "3")
    code, first = run(capsys)
    assert code == 0 and first["sent"] > 0
    sent = len(smtp.messages)
    started = time.monotonic()
    code, summary = run(capsys)
    assert code == 0 and summary["sent"] == summary["planned"] == 0 and len(smtp.messages) == sent
    assert time.monotonic() - started < 20  # a helper waiting for more would hold the run until killed
