"""The disk fills at each place a run writes, after some emails went out: the run stops with exit 74 and one
line, every message a server took is whole, nothing is left half-written on the wire, and once there is room
a rerun sends the rest: each planned email sent, or unknown only for what was under way, none twice."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import prometheus_client
import psycopg
import pytest
import sqlalchemy

from dunning import ledger, store
from dunning.cli import main
from dunning.delivery.capture import CapturedMessage, CaptureServer
from dunning.run.clock import SystemClock
from tests.faults.full_disk import Disk, full_sqlite
from tests.faults.wiretap import WireTap
from tests.run.conftest import AS_OF_TEXT, expected_message_ids, load_sample, planned, run

OUT_BEFORE_FULL = 3  # messages the server holds before the disk fills
CONNECTIONS = 4  # smtp.concurrency of a delivery process: at most one email of each in flight
HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version")
COMMANDS = (b"QUIT", b"RSET", b"MAIL FROM:", b"RCPT TO:", b"DATA", b"NOOP", b"EHLO")
LEASE_SECONDS = 300  # the default, whose heartbeat waits a third of it


class Run:
    """What a test has at hand: the disk, whether enough went out, the clock's offset."""

    def __init__(self) -> None:
        self.monkeypatch = pytest.MonkeyPatch()  # what makes the disk fill, undone once there is room again
        self.disk = Disk()
        self.out = threading.Event()  # the server holds OUT_BEFORE_FULL messages
        self.offset = timedelta(0)
        self.main_pid = os.getpid()

    def fill_once_out(self, wait: bool = False) -> None:
        """Fill the disk if enough went out (waiting a bounded while for it when told to)."""
        if self.out.wait(10) if wait else self.out.is_set():
            self.disk.fill()

    def later(self) -> None:
        """An hour on, for every run from now: the leases of a stopped run have run out."""
        self.offset += timedelta(hours=1)


def _flight_record(kind: bytes) -> Callable[[Run], None]:
    """The disk fills as the flight log appends a record of this kind ("d": data under way, "o": an outcome)."""
    def install(run: Run) -> None:
        def write(fd: int, data: Any) -> int:
            if not run.disk.full and bytes(data[:4]) == b'["' + kind + b'"':
                run.fill_once_out()
            return run.disk.write(fd, data)
        run.monkeypatch.setattr(os, "write", write)
    return install


def _flight_opened(run: Run) -> None:
    """The disk fills as the main process creates its flight log, while a helper process sends."""
    def open_(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if "-flight" in str(path) and flags & os.O_CREAT and os.getpid() == run.main_pid:
            run.fill_once_out(wait=True)
        return run.disk.open(path, flags, mode, dir_fd=dir_fd)
    run.monkeypatch.setattr(os, "open", open_)


def _ledger(name: str, *, wait_after: int | None = None, moment: bool = False) -> Callable[[Run], None]:
    """The disk fills as the ledger's `name` is called (from the call after `wait_after`, waiting for the
    server to hold enough: a helper process sends meanwhile); for a moment only, if told so: room comes back
    as the call returns, so that nothing after it meets the full disk."""
    def install(run: Run) -> None:
        real, calls = getattr(ledger, name), [0]

        def call(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if os.getpid() == run.main_pid:
                waits = wait_after is not None and calls[0] > wait_after
                run.fill_once_out(wait=waits)
            try:
                return real(*args, **kwargs)
            finally:
                if moment:
                    run.disk.free()
        run.monkeypatch.setattr(ledger, name, call)
    return install


def _lease_renewal(run: Run) -> None:
    """The disk is full for a moment as the heartbeat renews a batch's lease, which it does as soon as enough
    went out: the renewal's failure alone must stop the batch."""
    _ledger("extend_leases", moment=True)(run)
    real_sleep = SystemClock.sleep

    async def sleep(clock: SystemClock, seconds: float) -> None:
        if seconds == LEASE_SECONDS / 3:  # the heartbeat's wait, moved on by what the server holds
            await asyncio.to_thread(run.out.wait, 10)
            return
        await real_sleep(clock, seconds)
    run.monkeypatch.setattr(SystemClock, "sleep", sleep)


def _metrics_file(run: Run) -> None:
    """The disk fills as the run writes its metrics textfile, once every email went out."""
    def write_to_textfile(path: str, registry: Any) -> None:
        run.disk.fill()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    run.monkeypatch.setattr(prometheus_client, "write_to_textfile", write_to_textfile)


def _postgresql_full(run: Run) -> None:
    """The database server's disk fills as the ledger records that emails' data goes out (PostgreSQL keeps that
    record in the ledger, with the outcomes finished meanwhile): from then on, every write of the ledger fails."""
    full = psycopg.errors.DiskFull('could not extend file "base/16384/16385": No space left on device')

    def failing(name: str) -> Callable[..., Any]:
        real = getattr(ledger, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "try_record":
                run.fill_once_out()
            if run.disk.full:  # on the driver's own cursor as the driver raises it, else as SQLAlchemy does
                raise full if name == "try_record" else sqlalchemy.exc.OperationalError(name, None, full)
            return real(*args, **kwargs)
        return call

    for name in ("try_record", "record", "claim", "extend_leases", "unclaim", "expire_leases"):
        run.monkeypatch.setattr(ledger, name, failing(name))


@dataclass(frozen=True)
class Site:
    """A place a run writes: how the disk fills there, and what the stopped run may leave in doubt."""

    install: Callable[[Run], None]
    in_doubt: int = 0  # emails at most unknown after the rerun: those under way when the run stopped
    workers: int = 1
    replays: bool = False  # a run stopped by a full flight log goes first, its log left to be replayed
    args: tuple[str, ...] = ()
    database: str = "sqlite"


SITES = {
    "flight log: data under way": Site(_flight_record(b"d"), in_doubt=CONNECTIONS),
    "flight log: an outcome": Site(_flight_record(b"o"), in_doubt=CONNECTIONS),
    "flight log: created": Site(_flight_opened, in_doubt=2 * CONNECTIONS, workers=2),
    "ledger: enqueue": Site(_ledger("enqueue", wait_after=1), in_doubt=2 * CONNECTIONS, workers=2),
    "ledger: claim": Site(_ledger("claim")),
    "ledger: outcomes": Site(_ledger("record")),
    "ledger: lease renewal": Site(_lease_renewal, in_doubt=CONNECTIONS),
    "ledger: flight log replayed": Site(_ledger("record"), in_doubt=CONNECTIONS, replays=True),
    "ledger: leases expired": Site(_ledger("expire_leases"), in_doubt=CONNECTIONS, replays=True),
    "metrics textfile": Site(_metrics_file, args=("--metrics-file", "run.prom")),
    "ledger journal on PostgreSQL": Site(_postgresql_full, in_doubt=CONNECTIONS, database="postgres"),
}


@pytest.fixture
def smtp() -> Iterator[CaptureServer]:
    """A capture server on loopback, which keeps every message it took."""
    with CaptureServer(port=0) as server:
        yield server


@pytest.fixture
def tap(smtp: CaptureServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[WireTap]:
    """The wire tap the runs connect through, in front of the capture server."""
    with WireTap(smtp.port) as relay:
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(relay.port))
        yield relay


def prepare(url: str, smtp: CaptureServer, monkeypatch: pytest.MonkeyPatch) -> Run:
    """80 accounts in the database, a run's disk and clock, small batches (so that a run writes often)."""
    for name, value in {"DATABASE__URL": url, "LINKS__KEYS": "test-signing-key", "DATABASE__BATCH_SIZE": "20",
                        "DELIVERY__BATCH_SIZE": "10", "DELIVERY__LEASE_SECONDS": str(LEASE_SECONDS)}.items():
        monkeypatch.setenv(f"DUNNING_{name}", value)
    load_sample(url, 80)
    state = Run()
    smtp.on_message = lambda _message: len(smtp.messages) >= OUT_BEFORE_FULL and state.out.set()
    monkeypatch.setattr(SystemClock, "now", lambda _clock: datetime.now(UTC) + state.offset)
    state.monkeypatch.setattr("sqlite3.dbapi2.connect", full_sqlite(state.disk))
    state.monkeypatch.setattr(os, "write", state.disk.write)
    return state


def stops_with_74(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """`dunning run` exits 74 with one line saying why, and no traceback; that line."""
    capsys.readouterr()
    assert main(["run", "--as-of", AS_OF_TEXT, *args]) == 74
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("dunning run: error: ")]
    assert len(said) == 1 and said[0] == err.splitlines()[-1] and "Traceback" not in err, err
    return said[0]


def well_formed(message: CapturedMessage, known: set[str]) -> None:
    """A whole message: every header, both parts, no defect, no SMTP command in it, a Message-ID the ledger has."""
    lines = message.data.split(b"\r\n")
    assert not any(line.upper().startswith(COMMANDS) for line in lines[:1]), lines[:2]
    assert b"QUIT" not in lines
    parsed = message.parsed()
    assert all(parsed[header] for header in HEADERS)
    assert [defect for part in parsed.walk() for defect in part.defects] == []
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and text.get_content().strip()
    assert html is not None and html.get_content().rstrip().endswith("</html>")
    assert parsed["Message-ID"] in known


def ledger_rows(url: str) -> dict[str, str]:
    with store.connect(url, migrate=False).connect() as conn:
        return dict(conn.execute(store.emails.select().with_only_columns(
            store.emails.c.message_id, store.emails.c.status).where(store.emails.c.message_id.is_not(None))).all())


@pytest.mark.parametrize("where", [pytest.param(where, marks=[pytest.mark.postgres] * (site.database == "postgres"))
                                   for where, site in SITES.items()])
def test_a_disk_that_fills_stops_the_run_with_74_and_a_rerun_sends_the_rest(where, smtp, tap, monkeypatch, capsys,
                                                                             request):
    """The disk fills at one place a run writes, after some emails went out (see the module docstring)."""
    site = SITES[where]
    url = request.getfixturevalue(f"{site.database}_url")
    state = prepare(url, smtp, monkeypatch)
    request.addfinalizer(state.monkeypatch.undo)
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", str(site.workers))
    expected = expected_message_ids(planned(capsys))
    if site.replays:  # a run stopped by its full flight log, which the next run replays
        _flight_record(b"d")(state)
        stops_with_74(capsys)
        state.monkeypatch.setattr(os, "write", state.disk.write)
        state.disk.free()
        state.later()
    site.install(state)
    said = stops_with_74(capsys, *site.args)
    assert state.disk.fills == 1 + site.replays and state.out.is_set(), f"the disk never filled at {where}"
    assert "No space left on device" in said or "database or disk is full" in said
    first = len(smtp.messages)

    state.disk.free()
    state.monkeypatch.undo()  # room again, and nothing fills it any more
    state.later()
    rerun_sends_the_rest(url, smtp, tap, capsys, expected, in_doubt=site.in_doubt)
    assert first >= OUT_BEFORE_FULL


def rerun_sends_the_rest(url: str, smtp: CaptureServer, tap: WireTap, capsys: pytest.CaptureFixture[str],
                         expected: set[str], *, in_doubt: int) -> None:
    """A rerun completes; every message the server took, across the runs, was whole and taken once; each planned
    email is sent, or unknown (at most in_doubt of them: those under way when the run stopped)."""
    code, summary = run(capsys)
    assert summary["stopped"] is None and code in (0, 1), summary  # 1: emails under way at the stop are held
    rows = ledger_rows(url)
    for message in smtp.messages:
        well_formed(message, set(rows))
    wires = tap.wires()
    assert sum(len(wire.messages) for wire in wires) >= len(smtp.messages)  # every message came through the tap
    for wire in wires:  # a session's data ends whole, or never began
        assert wire.left_open in (None, b""), wire.left_open[:200]
    received = Counter(message.parsed()["Message-ID"] for message in smtp.messages)
    assert [mid for mid, count in received.items() if count > 1] == []
    unknown = {mid for mid, status in rows.items() if status == "unknown"}
    assert set(rows.values()) <= {"sent", "unknown"} and len(unknown) <= in_doubt, unknown
    assert set(received) | unknown == expected


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 8 MiB of its own, mounted for the test (as root), that really fills."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the injected full disks above cover every place")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a small tmpfs is not permitted here ({mounted.stderr.strip()}); the injected full "
                    "disks above cover every place")
    yield where
    subprocess.run(["umount", "--lazy", str(where)], check=True)


def fill(folder: Path) -> Path:
    """Write zeros into a file there until the disk has no room left; the file."""
    filler, block = folder / "filler", bytes(1 << 16)
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def test_a_real_small_disk_that_fills_mid_run_stops_it_with_74_and_a_rerun_sends_the_rest(small_disk, smtp, tap,
                                                                                          monkeypatch, capsys):
    """The SQLite file and its flight logs on a small tmpfs that fills after some emails went out: whichever
    write meets it first, the run stops with 74 and one line; once the filler is gone, a rerun sends the rest."""
    url = f"sqlite:///{small_disk / 'dunning.sqlite3'}"
    state = prepare(url, smtp, monkeypatch)
    state.monkeypatch.undo()  # a real disk: nothing injected
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")
    expected = expected_message_ids(planned(capsys))
    filled: list[Path] = []
    smtp.on_message = lambda _message: len(smtp.messages) == OUT_BEFORE_FULL and filled.append(fill(small_disk))
    said = stops_with_74(capsys)
    assert "No space left on device" in said or "database or disk is full" in said
    assert filled and OUT_BEFORE_FULL <= len(smtp.messages) < len(expected)
    filled[0].unlink()  # space freed
    state.later()
    rerun_sends_the_rest(url, smtp, tap, capsys, expected, in_doubt=CONNECTIONS)
