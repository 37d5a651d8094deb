"""The flight log beside a SQLite ledger: what a delivery process appends as it sends, and the replay of a
stopped process's log before its leases expire."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select

from dunning import ledger, store
from dunning.ledger import OutboxEntry, Result
from dunning.run.clock import ShiftedClock
from dunning.run.flight import FlightLog, expire_lapsed, flight_folder, read_flight
from dunning.run.journal import FlightJournal
from dunning.settings import DeliverySettings

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LEASE = 60
SENT = Result(2, 1, "sent", code=250, reply="2.0.0 queued as X", delivered=("billing@customer2.example",))
REFUSED = Result(4, 1, "retry", code=451, reply="4.7.1 try later", refused={"cc@customer4.example": [451, "later"]},
                 delivered=("billing@customer4.example",), primary_delivered=True)


def _entry(i: int) -> OutboxEntry:
    return OutboxEntry(account=f"acct_{i}", payment_method=f"pm_{i}", notice="past_due", stage=1, locale="fr-FR",
                       status="send", keys=(f"past_due:acct_{i}:pm_{i}:2026-11-01:1",),
                       message_id=f"<past_due.{i}@billing.example>", payload={"to": [f"billing@customer{i}.example"]})


@pytest.fixture
def engine(sqlite_url: str):
    engine = store.connect(sqlite_url)
    yield engine
    engine.dispose()


def _claimed(engine, worker: str, n: int) -> list[ledger.Claim]:
    ledger.enqueue(engine, [_entry(i) for i in range(1, n + 1)], now=T0)
    return ledger.claim(engine, worker=worker, limit=n, now=T0, lease_seconds=LEASE)


def _statuses(engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(store.emails.c.id, store.emails.c.status)).all())


def _stopped_worker() -> str:
    """The name a delivery process that has exited had on this machine."""
    process = subprocess.Popen(["true"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"


def test_a_log_reads_back_what_was_appended_and_leaves_out_a_line_cut_short(tmp_path):
    """Marks and outcomes (refusals and recipients included) come back as written; in doubt are the emails
    under way without an outcome; a line the kill cut short is left out."""
    flight = FlightLog(tmp_path / "ledger.sqlite3-flight", "host:1")
    for email_id in (1, 2, 3):
        flight.under_way(email_id, 1)
    flight.finished(SENT)
    flight.finished(REFUSED)
    flight.close(remove=False)
    with flight.path.open("ab") as log:
        log.write(b'["o",{"email_id":3,"fen')
    read = read_flight(flight.path)
    assert read.outcomes == (SENT, REFUSED)
    assert read.under_way == {(1, 1), (2, 1), (3, 1)} and read.in_doubt == [(1, 1), (3, 1)]


def test_two_processes_of_one_name_never_share_a_log(tmp_path):
    """A process that gets the pid of one that was killed writes a log of its own, leaving the other's whole."""
    folder = tmp_path / "ledger.sqlite3-flight"
    first, second = FlightLog(folder, "host:7"), FlightLog(folder, "host:7")
    first.under_way(1, 1)
    assert first.path != second.path and read_flight(first.path).under_way == {(1, 1)}
    for log in (first, second):
        log.close(remove=True)
    assert not list(folder.iterdir())


def test_only_a_sqlite_file_keeps_flight_logs(tmp_path):
    """PostgreSQL and SQLite in memory have the ledger record what is under way itself."""
    assert flight_folder(create_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")) == \
        tmp_path / "ledger.sqlite3-flight"
    assert flight_folder(create_engine("sqlite://")) is None
    assert flight_folder(create_engine("postgresql+psycopg://u@127.0.0.1/db")) is None


def test_a_stopped_process_s_log_is_replayed_before_its_leases_expire(engine):
    """Outcomes in the log are recorded, emails under way without one are unknown, the rest go back to the
    queue; the log of a process that is gone is removed."""
    worker = _stopped_worker()
    first, second, third, fourth, fifth = _claimed(engine, worker, 5)
    flight = FlightLog(flight_folder(engine), worker)
    for claim in (first, second, fourth):
        flight.under_way(claim.email_id, claim.fence)
    flight.finished(SENT)     # the second
    flight.finished(REFUSED)  # the fourth: its cc is retried
    flight.close(remove=False)

    assert expire_lapsed(engine, DeliverySettings(), now=T0 + timedelta(seconds=LEASE - 1)) == 0
    assert _statuses(engine)[first.email_id] == "sending"  # leases still held: nothing replayed yet
    expired = expire_lapsed(engine, DeliverySettings(unknown="hold"), now=T0 + timedelta(seconds=LEASE + 1))
    assert _statuses(engine) == {first.email_id: "unknown", second.email_id: "sent", third.email_id: "queued",
                                 fourth.email_id: "retry", fifth.email_id: "queued"}
    assert expired == 1 and not flight.path.exists()  # how many became unknown
    (unknown,) = ledger.list_unknown(engine)
    assert unknown.email_id == first.email_id


def test_a_live_process_whose_lease_ran_out_keeps_its_log(engine):
    """Replayed, but kept: a process still running may still append to it."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    (claim,) = _claimed(engine, worker, 1)
    flight = FlightLog(flight_folder(engine), worker)
    flight.under_way(claim.email_id, claim.fence)
    expire_lapsed(engine, DeliverySettings(), now=T0 + timedelta(seconds=LEASE + 1))
    assert _statuses(engine) == {claim.email_id: "unknown"} and flight.path.exists()
    flight.close(remove=True)


def test_with_a_flight_log_the_journal_writes_the_ledger_once_a_batch(engine):
    """A send's record goes to the log alone, at once; the outcomes reach the ledger when the batch is done,
    and the log is emptied then."""
    first, second = _claimed(engine, "w1", 2)
    flight = FlightLog(flight_folder(engine), "w1")
    recorded: list[ledger.RecordCounts] = []
    journal = FlightJournal(engine, ShiftedClock(), DeliverySettings(), recorded.append, flight)

    async def batch() -> None:
        for claim in (first, second):
            await journal.data_goes_out(claim)
            journal.finished(Result(claim.email_id, claim.fence, "sent", code=250))

    asyncio.run(batch())
    with engine.connect() as conn:
        assert set(conn.execute(select(store.emails.c.data_at)).scalars()) == {None}
    assert _statuses(engine) == {first.email_id: "sending", second.email_id: "sending"} and not recorded
    assert read_flight(flight.path).in_doubt == []
    journal.close()
    assert _statuses(engine) == {first.email_id: "sent", second.email_id: "sent"}
    assert [counts.sent for counts in recorded] == [2] and flight.path.read_bytes() == b""
    flight.close(remove=True)
