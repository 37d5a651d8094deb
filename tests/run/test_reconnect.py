"""A relay that goes away in the middle of a run: the run waits for it, longer each time, within its allowance."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter

import pytest

from dunning.cli import main
from dunning.delivery.capture import CaptureServer
from dunning.delivery.reconnect import LONGEST_WAIT
from dunning.errors import ExitCode
from dunning.run.clock import ShiftedClock
from dunning.run.drain import deliver_outbox
from dunning.run.summary import Progress
from dunning.settings import load_settings
from tests.run.conftest import AS_OF_TEXT, load_sample, received_ids

OUTAGE_SECONDS = 20.0


class RelayClock(ShiftedClock):
    """A clock on which the waits between reconnections cost no real time; it starts the relay again once
    the relay has been gone for `back_after` seconds of this clock (never, with None)."""

    def __init__(self, back_after: float | None) -> None:
        super().__init__()
        self.back_after, self.waited, self.restart = back_after, 0.0, lambda: None

    async def sleep(self, seconds: float) -> None:
        if seconds > LONGEST_WAIT:  # a lease's heartbeat: a real wait, cancelled with its batch
            return await super().sleep(seconds)
        self.advance(seconds)
        self.waited += seconds
        if self.back_after is not None and self.waited >= self.back_after:
            self.restart()
            self.back_after = None
        await asyncio.sleep(0)


@pytest.fixture
def enqueued(sqlite_url, monkeypatch, capsys) -> int:
    """Small batches on one process, and the emails of the sample enqueued in SQLite (whose outcomes are
    recorded once a batch: the relay is stopped between two batches): how many."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "test-signing-key")
    load_sample(sqlite_url, 45)
    monkeypatch.setenv("DUNNING_DELIVERY__BATCH_SIZE", "5")
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")
    # One connection: one send waits at a time, so the waits this clock adds up are the outage's length.
    monkeypatch.setenv("DUNNING_SMTP__CONCURRENCY", "1")
    capsys.readouterr()
    assert main(["run", "--json", "--no-deliver", "--as-of", AS_OF_TEXT]) == 0
    planned = int(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["planned"])
    assert planned > 10
    return planned


def _relay_down_after_first_batch(monkeypatch, clock: RelayClock) -> tuple[list[CaptureServer], list[str], Progress]:
    """A relay that stops once the first batch is recorded and, on clock.restart, listens again on its port."""
    servers = [CaptureServer(port=0).start()]
    port = servers[0].port
    monkeypatch.setenv("DUNNING_SMTP__PORT", str(port))
    events: list[str] = []

    def restart() -> None:
        servers.append(CaptureServer(port=port).start())

    def progress(what: str, count: int) -> None:
        events.append(what)
        if what == "sent" and len(servers) == 1:
            servers[0].stop()  # between two batches: every connection is idle

    clock.restart = restart
    return servers, events, progress


def test_a_relay_stopped_mid_run_is_waited_for_and_every_email_sent(enqueued, monkeypatch, caplog):
    """The relay stops after the first batch and comes back 20 s later: the run waits (logged and in the
    progress), sends every email once, exits 0."""
    clock = RelayClock(back_after=OUTAGE_SECONDS)
    servers, events, progress = _relay_down_after_first_batch(monkeypatch, clock)
    try:
        with caplog.at_level(logging.WARNING):
            summary = deliver_outbox(load_settings(), progress=progress, clock=clock)
    finally:
        for server in servers:
            server.stop()
    received = Counter(received_ids(servers[0]) + received_ids(servers[1]))
    assert len(servers) == 2 and received_ids(servers[0]) and received_ids(servers[1])
    assert summary.exit_code() == ExitCode.OK and summary.stopped is None
    assert summary.sent == enqueued == len(received) and set(received.values()) == {1}
    assert OUTAGE_SECONDS <= clock.waited < OUTAGE_SECONDS + LONGEST_WAIT
    assert events.count("waits for the SMTP server") >= 5
    assert any("unreachable" in r.getMessage() and "next attempt in" in r.getMessage() for r in caplog.records)


def test_a_relay_gone_past_the_allowance_stops_the_run_with_75(enqueued, monkeypatch):
    """A relay that does not come back within smtp.reconnect_seconds stops the run (75), the rest queued."""
    monkeypatch.setenv("DUNNING_SMTP__RECONNECT_SECONDS", "30")
    clock = RelayClock(back_after=None)
    servers, _events, progress = _relay_down_after_first_batch(monkeypatch, clock)
    try:
        summary = deliver_outbox(load_settings(), progress=progress, clock=clock)
    finally:
        servers[0].stop()
    assert summary.exit_code() == ExitCode.PENDING and "connection failures in a row" in (summary.stopped or "")
    assert summary.sent == len(received_ids(servers[0])) == 5 < enqueued
    assert 29 <= clock.waited <= 30 + LONGEST_WAIT  # the real time the run took counts too
