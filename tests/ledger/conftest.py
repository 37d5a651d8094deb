"""Fixtures for the ledger tests: a store on each database, planned notices, and worker processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dunning import store
from dunning.ledger import OutboxEntry

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WORKER = Path(__file__).with_name("worker.py")


@pytest.fixture
def engine(database_url: str):
    """A migrated, empty store on the database under test."""
    engine = store.connect(database_url)
    yield engine
    engine.dispose()


def _send(i: int, *, keys: tuple[str, ...] | None = None, payload: dict | None = None) -> OutboxEntry:
    """A planned past_due email for account i with one key and its own Message-ID."""
    return OutboxEntry(account=f"acct_{i}", payment_method=f"pm_{i}", notice="past_due", stage=1,
                       locale="fr-FR", status="send", keys=keys or (f"past_due:acct_{i}:pm_{i}:2026-11-01:1",),
                       message_id=f"<past_due.{i}@billing.example>",
                       payload=payload if payload is not None else {"to": [f"billing{i}@example.com"]})


@pytest.fixture
def send() -> Callable[..., OutboxEntry]:
    """The factory of one planned email: send(i, keys=…, payload=…)."""
    return _send


@pytest.fixture
def sends() -> Callable[..., list[OutboxEntry]]:
    """A factory of n planned emails, one per account: sends(n, start=0)."""
    return lambda n, start=0: [_send(i) for i in range(start, start + n)]


@pytest.fixture
def run_workers(tmp_path: Path):
    """Start worker.py processes that all begin at the same instant; their stdout lines once they end."""
    def run(*commands: list[str]) -> list[list[str]]:
        go = tmp_path / "go"
        procs = [subprocess.Popen([sys.executable, str(WORKER), str(go), str(tmp_path / f"ready{n}"), *command],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n, command in enumerate(commands)]
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{n}").exists() for n in range(len(procs))):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
                [p.communicate() for p in procs if p.poll() is not None]
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        return [out.split() for out, _ in outputs]
    return run
