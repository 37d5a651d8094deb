"""One planner and several `dunning deliver` processes sharing a PostgreSQL outbox, a killed one, a stopped one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from dunning import store
from dunning.cli import main
from dunning.delivery.capture import CaptureServer, Fault
from dunning.errors import ExitCode
from dunning.run.clock import ShiftedClock
from dunning.run.drain import deliver_outbox
from dunning.settings import load_settings
from tests.run import kill_moments
from tests.run.conftest import AS_OF_TEXT, expected_message_ids, load_sample, planned, received_ids

LEASE_SECONDS = 120  # longer than the test: only a clock moved past it (the rerun) finds it lapsed
BATCH = 10
KILLED_BATCH = 30


@pytest.fixture
def shared(postgres_url, monkeypatch):
    """A PostgreSQL outbox with 150 sample accounts, small batches, a lease longer than the test, one process
    per deliverer."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", postgres_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "test-signing-key")
    monkeypatch.setenv("DUNNING_DELIVERY__BATCH_SIZE", str(BATCH))
    monkeypatch.setenv("DUNNING_DELIVERY__LEASE_SECONDS", str(LEASE_SECONDS))
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")
    load_sample(postgres_url, 150)
    return postgres_url


def _deliverer(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dunning", "deliver", "--json", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def _plan_and_enqueue(capsys) -> set[str]:
    """`dunning run --no-deliver`: the Message-IDs it enqueued, none of them sent yet."""
    expected = expected_message_ids(planned(capsys))
    assert main(["run", "--json", "--no-deliver", "--as-of", AS_OF_TEXT]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["planned"] == len(expected) > 4 * BATCH and summary["sent"] == 0
    return expected


def _statuses(url: str) -> dict[str, str]:
    with store.connect(url).connect() as conn:
        return dict(conn.execute(select(store.emails.c.message_id, store.emails.c.status)).all())


@pytest.mark.postgres
def test_one_planner_and_four_deliverers_send_every_email_exactly_once(shared, smtp, capsys):
    """Four `dunning deliver` processes drain what one planner enqueued: each email reaches the server once,
    and each deliverer's summary counts only what it sent."""
    expected = _plan_and_enqueue(capsys)
    smtp.add_fault(Fault("data", code=250, delay=0.01, times=None))
    deliverers = [_deliverer() for _ in range(4)]
    outputs = [process.communicate(timeout=120) for process in deliverers]
    assert [process.returncode for process in deliverers] == [0] * 4, outputs
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _err in outputs]
    received = Counter(received_ids(smtp))
    assert set(received) == expected and set(received.values()) == {1}
    assert sum(s["sent"] for s in summaries) == len(expected)
    assert sum(s["sent"] > 0 for s in summaries) >= 2  # the queue was shared, not drained by one
    assert set(_statuses(shared).values()) == {"sent"}


@pytest.mark.postgres
@pytest.mark.parametrize("moment", kill_moments.MOMENTS)
def test_a_killed_deliverer_loses_nothing(shared, smtp, capsys, monkeypatch, moment):
    """After SIGKILL of a deliverer with a batch in flight, another sends the rest; once its lease has run out, a
    rerun finds the batch it held: what was in flight is held unknown, at most one email per connection, and
    never an email the server had answered before the next one on its session went out; the rest is sent
    now; nothing reaches the server twice."""
    expected = _plan_and_enqueue(capsys)
    # A batch with room for every email the moment takes: those that arrive, and those chained behind a held
    # reply, which never do.
    monkeypatch.setenv("DUNNING_DELIVERY__BATCH_SIZE", str(KILLED_BATCH))
    armed = kill_moments.arm(smtp, moment, after=BATCH + 1, connections=load_settings().smtp.concurrency)
    before_kill = kill_moments.kill_at(smtp, armed, _deliverer())
    with CaptureServer(port=0) as again:
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(again.port))
        assert deliver_outbox(load_settings()).exit_code() == ExitCode.OK
        stranded = [message_id for message_id, status in _statuses(shared).items() if status == "sending"]
        assert 0 < len(stranded) <= KILLED_BATCH
        # The rerun's clock is past the victim's lease, without waiting for it.
        summary = deliver_outbox(load_settings(), clock=ShiftedClock(timedelta(seconds=LEASE_SECONDS + 1)))
        after_kill = Counter(received_ids(again))
    after = _statuses(shared)
    in_doubt = {message_id for message_id, status in after.items() if status != "sent"}
    assert set(after) == expected and in_doubt <= set(stranded) and {after[m] for m in in_doubt} <= {"unknown"}
    assert len(in_doubt) <= load_settings().smtp.concurrency and summary.held == len(in_doubt)
    assert not in_doubt & before_kill.followed
    assert summary.sent == len(stranded) - len(in_doubt)
    assert set(after_kill.values()) == {1} and not set(after_kill) & set(before_kill.message_ids)
    assert expected - in_doubt <= set(after_kill) | set(before_kill.message_ids)  # every email sent was received


@pytest.mark.postgres
def test_sigterm_stops_a_deliverer_after_the_batch_in_hand(shared, smtp, capsys):
    """SIGTERM to `dunning deliver --forever` mid-batch: it finishes and records that batch, exits 0, leaves
    the rest queued; a second deliverer sends the rest, each email once."""
    expected = _plan_and_enqueue(capsys)
    smtp.add_fault(Fault("data", code=250, delay=0.05, times=None))
    service = _deliverer("--forever")
    smtp.wait_for(3, timeout=60)
    service.send_signal(signal.SIGTERM)
    out, err = service.communicate(timeout=60)
    summary = json.loads(out.strip().splitlines()[-1])
    statuses = Counter(_statuses(shared).values())
    assert service.returncode == 0, err
    assert summary["sent"] % BATCH == 0 and 0 < summary["sent"] < len(expected)
    assert statuses == {"sent": summary["sent"], "queued": len(expected) - summary["sent"]}
    assert len(smtp.messages) == summary["sent"]
    rest = deliver_outbox(load_settings())
    received = Counter(received_ids(smtp))
    assert rest.sent == len(expected) - summary["sent"]
    assert set(received) == expected and set(received.values()) == {1}


class PlannerMeanwhile(ShiftedClock):
    """A clock whose idle polls cost no time: at the first the planner runs, at the second SIGTERM arrives."""

    def __init__(self, capsys, poll_seconds: float) -> None:
        super().__init__()
        self.capsys, self.poll_seconds, self.polls = capsys, poll_seconds, 0

    async def sleep(self, seconds: float) -> None:
        if seconds != self.poll_seconds:
            return await super().sleep(seconds)
        self.polls += 1
        self.advance(seconds)
        if self.polls == 1:
            self.expected = _plan_and_enqueue(self.capsys)
        else:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.postgres
def test_a_deliverer_service_sends_what_is_enqueued_while_it_polls(shared, smtp, capsys):
    """`deliver --forever` started on an empty outbox sends what a planner enqueues later, then stops on
    SIGTERM with exit status 0."""
    clock = PlannerMeanwhile(capsys, poll_seconds=7.0)
    summary = deliver_outbox(load_settings(), forever=True, poll_seconds=7.0, clock=clock)
    assert clock.polls == 2 and summary.exit_code() == ExitCode.OK and summary.stopped is None
    received = Counter(received_ids(smtp))
    assert set(received) == clock.expected and set(received.values()) == {1} and summary.sent == len(received)
