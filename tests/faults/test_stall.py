"""A `dunning run` stopped (SIGSTOP) past its lease while another takes its claims over, then resumed.

The pause is deterministic: the capture server stops the run's process group as it receives the
STALL_AT-th message. The second run starts once every lease the stopped run holds has run out in the
database (the one wait on real time here: a lease is time on the wall clock, and a stall is real time
passing for the stopped process too).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, make_url, select

from dunning import store
from dunning.run.clock import ShiftedClock
from tests.run.conftest import AS_OF_TEXT, billing, expected_message_ids, load_sample, planned, received_ids, run, smtp

__all__ = ["billing", "smtp"]  # the fixtures of the run tests, used here by name

LEASE_SECONDS = 3
STALL_AT = 10
RETRY_BACKOFF = 60


def _start_run(**options: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dunning", "run", "--json", "--as-of", AS_OF_TEXT],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **{"env": dict(os.environ), **options})  # type: ignore[call-overload]


def _holds_sqlite_write_lock(url: str) -> bool:
    """Whether some process holds the SQLite file's write lock (a process stopped inside a write)."""
    path = make_url(url).database
    if url.startswith("postgresql") or path is None:
        return False
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def _wait_until_leases_lapse(url: str, timeout: float) -> None:
    """Until no email is held under a lease that has not run out on this machine's clock."""
    engine, give_up = store.connect(url, migrate=False), time.monotonic() + timeout
    query = select(func.max(store.emails.c.lease_until)).where(store.emails.c.status == "sending")
    while True:
        with engine.connect() as conn:
            latest = conn.execute(query).scalar()
        if latest is None or latest.replace(tzinfo=latest.tzinfo or UTC) < datetime.now(UTC):
            return
        assert time.monotonic() < give_up, "the stopped run's leases never ran out"
        time.sleep(0.1)


class Staller:
    """Stops the run's process group when the server has received `at` messages (once it is armed)."""

    def __init__(self, server, at: int) -> None:
        self.server, self.at, self.stopped = server, at, threading.Event()
        self.process: subprocess.Popen[str] | None = None
        server.on_message = self

    def __call__(self, _message: object) -> None:
        if self.process is not None and not self.stopped.is_set() and len(self.server.messages) >= self.at:
            os.killpg(self.process.pid, signal.SIGSTOP)
            self.stopped.set()

    def stall(self, process: subprocess.Popen[str], url: str) -> None:
        """Wait until the process is stopped outside a write of the SQLite file (else let it go on a little)."""
        self.process = process
        while True:
            assert self.stopped.wait(60), "the run never reached the message it stops at"
            if not _holds_sqlite_write_lock(url):
                return
            self.at = len(self.server.messages) + 1
            self.stopped.clear()
            os.killpg(process.pid, signal.SIGCONT)


def test_a_run_stalled_past_its_lease_sends_nothing_twice(billing, smtp, capsys, monkeypatch):
    """Run A stops past its lease; run B takes A's claims over and sends them; A resumes: it sends nothing
    more, says its lease is lost (exit 75), and what it had under way is unknown or retried, never twice."""
    load_sample(billing, 150)
    expected = expected_message_ids(planned(capsys))
    settings = {"LEASE_SECONDS": LEASE_SECONDS, "BATCH_SIZE": 20, "RETRY_BACKOFF_SECONDS": RETRY_BACKOFF}
    for name, value in settings.items():
        monkeypatch.setenv(f"DUNNING_DELIVERY__{name}", str(value))
    staller = Staller(smtp, STALL_AT)
    stalled = _start_run(start_new_session=True)
    try:
        staller.stall(stalled, billing)
        _wait_until_leases_lapse(billing, timeout=LEASE_SECONDS * 10)
        # B's own lease is long: B may wait for a compile lock the stopped A holds (see template_cache).
        taking_over = _start_run(env={**os.environ, "DUNNING_DELIVERY__LEASE_SECONDS": "60"})
        _out, err_b = taking_over.communicate(timeout=120)
        assert taking_over.returncode in (0, 1), err_b  # 1: emails A had under way are held unknown
    finally:
        os.killpg(stalled.pid, signal.SIGCONT)
        _out, err_a = stalled.communicate(timeout=120)
    assert stalled.returncode == 75 and "lease lost" in err_a, err_a
    clock = ShiftedClock()
    clock.advance(RETRY_BACKOFF + LEASE_SECONDS + 1)  # what A gave back for a retry is due
    run(capsys, clock=clock)
    received = Counter(received_ids(smtp))
    assert [mid for mid, count in received.items() if count > 1] == []
    with store.connect(billing, migrate=False).connect() as conn:
        rows = dict(conn.execute(select(store.emails.c.message_id, store.emails.c.status)).all())
    assert set(rows) == expected and set(rows.values()) <= {"sent", "unknown"}, Counter(rows.values())
    unknown = {mid for mid, status in rows.items() if status == "unknown"}
    assert {mid for mid, status in rows.items() if status == "sent"} <= set(received) <= expected
    # Only what A had under way at the stall can be in doubt: one email per connection of each process.
    assert len(unknown) <= 2 * 4
