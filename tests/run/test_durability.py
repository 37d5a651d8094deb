"""What README's durability section promises, where a test can hold it: SQLite's journal and sync mode, and
flight-log lines that outlive the process that wrote them."""

from __future__ import annotations

import os
import signal

from sqlalchemy import text

from dunning import store
from dunning.run.flight import FlightLog, read_flight


def test_a_sqlite_ledger_runs_in_wal_mode_synced_at_checkpoints(sqlite_url):
    """journal_mode WAL and synchronous NORMAL (1): a commit survives the process, not always a power loss."""
    engine = store.connect(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1


def test_a_flight_line_outlives_the_process_killed_right_after_writing_it(tmp_path):
    """The line is the operating system's once under_way returns: a process killed at once (no close, no
    flush, no exit handler) leaves it in the log for the replay."""
    child = os.fork()
    if child == 0:
        try:
            flight = FlightLog(tmp_path, "host:1")
            flight.under_way(7, 3)
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    (log,) = tmp_path.glob("host_1.*.jsonl")
    assert read_flight(log).in_doubt == [(7, 3)]
