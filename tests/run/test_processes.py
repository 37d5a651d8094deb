"""Several `dunning run` processes on one database, and a run killed in the middle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import select

from dunning import store
from dunning.delivery.capture import CaptureServer, Fault
from dunning.run.clock import ShiftedClock
from dunning.settings import load_settings
from tests.run import kill_moments
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


@pytest.mark.parametrize("moment", kill_moments.MOMENTS)
def test_killed_run_loses_nothing_and_sends_nothing_twice(billing, smtp, capsys, monkeypatch, moment):
    """After SIGKILL mid-run, the next run sends what was claimed but not started; only emails whose data was
    under way are unknown, at most one per connection; an email answered before the next one on its
    session went out is not among them; nothing is received twice, across the kill either."""
    load_sample(billing, 150)
    plan = planned(capsys)
    armed = kill_moments.arm(smtp, moment, after=10, connections=load_settings().smtp.concurrency)
    monkeypatch.setenv("DUNNING_DELIVERY__LEASE_SECONDS", str(LEASE_SECONDS))
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")  # one process: the bound is that of its connections
    before_kill = kill_moments.kill_at(smtp, armed, _start_run())
    with CaptureServer(port=0) as again:
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(again.port))
        clock = ShiftedClock()
        clock.advance(LEASE_SECONDS + 1)  # the killed run's leases have run out
        code, summary = run(capsys, clock=clock)
        after_kill = Counter(received_ids(again))
    with store.connect(billing).connect() as conn:
        rows = conn.execute(select(store.emails.c.message_id, store.emails.c.status)).all()
    statuses = Counter(status for _id, status in rows)
    assert set(statuses) <= {"sent", "failed", "unknown"}, statuses
    assert {message_id for message_id, _s in rows} == expected_message_ids(plan)
    settings = load_settings()
    connections = settings.smtp.concurrency * settings.delivery.workers
    assert summary["held"] == statuses["unknown"] <= connections and code == (1 if statuses["unknown"] else 0)
    unknown = {message_id for message_id, status in rows if status == "unknown"}
    assert not unknown & before_kill.followed
    assert set(after_kill.values()) <= {1} and not (set(after_kill) & unknown)
    assert not set(after_kill) & set(before_kill.message_ids)  # what the killed run had sent is not sent again
    assert len(set(before_kill.message_ids)) == len(before_kill.message_ids)
    sent = {message_id for message_id, status in rows if status == "sent"}
    assert sent <= set(after_kill) | set(before_kill.message_ids)  # every email recorded sent was received


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
