"""A disk that fills while a run sends: the flight log writes whole records or fails loudly, the run stops
(exit 74) with nothing garbled or sent twice, and a rerun once there is room completes."""

from __future__ import annotations

import errno
import os
from collections import Counter

import pytest

from dunning import ledger, store
from dunning.cli import main
from dunning.run import flight
from dunning.run.clock import ShiftedClock
from dunning.run.flight import FlightLog, read_flight
from dunning.store.failures import known_failure
from tests.run.conftest import AS_OF_TEXT, expected_message_ids, load_sample, planned, received_ids, run, smtp

__all__ = ["smtp"]  # the fixture of the run tests, used here by name

real_write = os.write


class Disk:
    """os.write as the flight log sees it: `step` bytes at most per call, and full after `room` bytes."""

    def __init__(self, step: int = 1 << 30, room: int = 1 << 60) -> None:
        self.step, self.room = step, room

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, bytes(data[:min(self.step, self.room)]))
        self.room -= written
        return written


def test_short_writes_go_on_until_the_record_is_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(flight.os, "write", Disk(step=3).write)
    log = FlightLog(tmp_path, "host:1")
    log.under_way(7, 2)
    log.finished(ledger.Result(7, 2, "sent", code=250))
    logged = read_flight(log.path)
    assert logged.under_way == {(7, 2)} and [r.status for r in logged.outcomes] == ["sent"]


def test_a_record_cut_by_a_full_disk_fails_and_so_does_every_later_one(tmp_path, monkeypatch):
    disk = Disk(step=4)
    monkeypatch.setattr(flight.os, "write", disk.write)
    log = FlightLog(tmp_path, "host:1")
    log.under_way(7, 2)
    disk.room = 5
    with pytest.raises(OSError) as cut:
        log.under_way(8, 2)
    disk.room = 1 << 60  # room again: a record after the cut one would share its line
    with pytest.raises(OSError, match="the flight log could not be written"):
        log.under_way(9, 2)
    assert read_flight(log.path).under_way == {(7, 2)}  # 8 never went out: its send stopped with the write
    failure = known_failure(cut.value)
    assert failure is not None and type(failure).__name__ == "StorageFailed"


def test_a_disk_that_fills_mid_run_stops_it_with_74_and_a_rerun_completes(sqlite_url, smtp, monkeypatch, capsys):
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "test-signing-key")
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")
    load_sample(sqlite_url, 150)
    expected = expected_message_ids(planned(capsys))
    monkeypatch.setattr(flight.os, "write", Disk(room=3_000).write)
    assert main(["run", "--as-of", AS_OF_TEXT]) == 74
    assert "dunning run: error: cannot write or read" in capsys.readouterr().err
    first = list(smtp.messages)
    assert 0 < len(first) < len(expected)
    for message in first:  # each accepted message is a whole message, never a command in its data
        assert message.data.split(b"\r\n", 1)[0].split(b":")[0] in {b"Date", b"From", b"To", b"Subject",
                                                                    b"Message-ID", b"MIME-Version", b"Reply-To"}
        assert message.parsed()["Message-ID"] in expected
    monkeypatch.setattr(flight.os, "write", real_write)  # room again
    clock = ShiftedClock()
    clock.advance(3600)  # the stopped run's leases have run out
    code, summary = run(capsys, clock=clock)
    assert summary["stopped"] is None and code in (0, 1)  # 1: an email in flight at the stop is held unknown
    received = Counter(received_ids(smtp))
    assert [mid for mid, count in received.items() if count > 1] == []
    with store.connect(sqlite_url, migrate=False).connect() as conn:
        rows = dict(conn.execute(store.emails.select().with_only_columns(
            store.emails.c.message_id, store.emails.c.status)).all())
    unknown = {mid for mid, status in rows.items() if status == "unknown"}
    # In doubt: at most the email whose mark was written on each of the 4 connections.
    assert set(rows.values()) <= {"sent", "unknown"} and len(unknown) <= 4
    assert set(received) | unknown == expected
