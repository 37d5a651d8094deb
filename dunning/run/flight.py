"""A delivery process's flight log, beside a SQLite ledger: which emails' data went out, and what became of them.

Before an email's data goes out, its line is appended to the log of the process sending it; once the
server answers, so is the outcome. The ledger gets the outcomes a batch at a time, and the log is
emptied then. An append to a file of the process's own is far cheaper than a committed write to the
ledger for every email (a SQLite transaction that all delivery processes' writes queue for; bench/README.md
has the figures). An append that returned is in the operating system's hands: a killed process loses
none of it.

When a process stops without recording its batch, its lease runs out; before leases are expired,
the log of every process whose lease ran out is replayed into the ledger: its outcomes are recorded,
and the emails it says were under way without an outcome are marked so, which makes them unknown.
Every other email it held goes back to the queue. A SQLite ledger is a file on this machine, and so
are the logs of every process that writes to it. PostgreSQL's deliverers may run on several machines:
there the ledger itself records each email whose data goes out (see journal).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from sqlalchemy import Engine

from dunning import ledger, store
from dunning.settings import DeliverySettings

__all__ = ["Flight", "FlightLog", "flight_folder", "read_flight", "replay_lapsed", "expire_lapsed"]

log = logging.getLogger(__name__)

_UNDER_WAY, _OUTCOME = "d", "o"
_UNDER_WAY_LINE = b'["' + _UNDER_WAY.encode() + b'",%d,%d]\n'


def flight_folder(engine: Engine) -> Path | None:
    """Where the delivery processes of a database file keep their logs (beside it); None when the ledger
    records what is under way itself (a database server, or one in memory)."""
    return store.backend_of(engine).flight_folder(engine.url)


def _file_stem(worker: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", worker)


def _logs_of(folder: Path, worker: str) -> list[Path]:
    # Each log has a name of its own: a process that gets the pid of one that was killed never writes
    # over the log that is still to be replayed.
    return sorted(folder.glob(f"{_file_stem(worker)}.*.jsonl"))


@dataclass(frozen=True, slots=True)
class Flight:
    """What a log says: emails whose data went out (email id, fence), and the outcomes known."""

    under_way: frozenset[tuple[int, int]]
    outcomes: tuple[ledger.Result, ...]

    @property
    def in_doubt(self) -> list[tuple[int, int]]:
        """Emails whose data went out and whose outcome the process did not live to learn."""
        known = {(result.email_id, result.fence) for result in self.outcomes}
        return sorted(self.under_way - known)


class FlightLog:
    """The log one delivery process appends to while it sends (one per process, emptied after each batch)."""

    def __init__(self, folder: Path, worker: str) -> None:
        folder.mkdir(exist_ok=True)
        self.path = folder / f"{_file_stem(worker)}.{secrets.token_hex(4)}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        self._failed: OSError | None = None

    def under_way(self, email_id: int, fence: int) -> None:
        """Record that this email's data goes out now (before it does)."""
        self._append(_UNDER_WAY_LINE % (email_id, fence))

    def finished(self, result: ledger.Result) -> None:
        """Record an email's outcome, as the ledger will get it (orjson writes the dataclass's fields)."""
        self._append(orjson.dumps([_OUTCOME, result]) + b"\n")

    def _append(self, record: bytes) -> None:
        """Write the whole record (a short write goes on from where it stopped), or raise. Once a write has
        failed, every later one fails too: a record written after a cut one would share its line, and both
        would be left out at the replay."""
        if self._failed is not None:
            raise OSError(self._failed.errno, f"the flight log could not be written: {self._failed.strerror}",
                          str(self.path))
        left = memoryview(record)
        try:
            while left:
                left = left[os.write(self._fd, left):]
        except OSError as exc:
            self._failed = exc
            raise

    def empty(self) -> None:
        """The ledger holds every outcome logged so far: start over."""
        os.ftruncate(self._fd, 0)

    def close(self, *, remove: bool) -> None:
        """Stop writing; remove: the process is done sending and the ledger has its outcomes (else the log
        stays, for the replay once the process's lease has run out)."""
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)


def read_flight(path: Path) -> Flight:
    """The log at path; a line cut short (the process was killed while writing it) is left out."""
    under_way, outcomes = set(), []
    for line in path.read_bytes().splitlines():
        try:
            kind, *fields = orjson.loads(line)
            if kind == _UNDER_WAY:
                under_way.add((int(fields[0]), int(fields[1])))
            elif kind == _OUTCOME:
                values = fields[0]
                outcomes.append(ledger.Result(**{**values, "delivered": tuple(values["delivered"])}))
        except (orjson.JSONDecodeError, ValueError, TypeError, IndexError, KeyError):
            log.warning("%s: a line that is not a flight record was left out", path)
    return Flight(frozenset(under_way), tuple(outcomes))


def replay_lapsed(engine: Engine, delivery: DeliverySettings, *, now: datetime) -> int:
    """Replay into the ledger the log of every delivery process whose lease has run out (see the module
    docstring); a log whose process has stopped is removed. How many outcomes were recorded."""
    folder = flight_folder(engine)
    if folder is None or not folder.is_dir():
        return 0
    recorded = 0
    for worker in ledger.lapsed_workers(engine, now=now):
        stopped = _stopped(worker)
        for path in _logs_of(folder, worker):
            flight = read_flight(path)
            counts = ledger.record(engine, flight.outcomes, now=now, max_attempts=delivery.max_attempts,
                                   backoff_seconds=delivery.retry_backoff_seconds, in_flight=flight.in_doubt)
            done = counts.sent + counts.retry + counts.failed + counts.unknown
            recorded += done
            if done or flight.in_doubt:
                log.info("flight log of %s, whose lease ran out: %d outcomes recorded, %d emails were under way",
                         worker, done, len(flight.in_doubt))
            if stopped:
                path.unlink(missing_ok=True)
    return recorded


def _stopped(worker: str) -> bool:
    """Whether the process a worker name stands for (host:pid) is gone from this machine."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        pass
    return False


def expire_lapsed(engine: Engine, delivery: DeliverySettings, *, now: datetime) -> int:
    """Leases that ran out, after their processes' flight logs are replayed: emails that were under way
    become unknown, the others go back to the queue (see ledger.expire_leases); how many leases."""
    replay_lapsed(engine, delivery, now=now)
    return ledger.expire_leases(engine, now=now, unknown_policy=delivery.unknown)
