"""The journal of a delivery process: in-flight records asked for together share a write, and a write
that meets another process's write lock lets the event loop go on instead of sleeping in SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from dunning import ledger, store
from dunning.run.journal import GATHER_SECONDS, LedgerJournal, journal_for
from dunning.settings import DeliverySettings
from dunning.store.sqlite import SQLITE_BUSY_TIMEOUT_MS

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class TickingClock:
    """A clock one second later at every reading: two writes never record the same moment."""

    def __init__(self) -> None:
        self.readings = 0

    def now(self) -> datetime:
        self.readings += 1
        return T0 + timedelta(seconds=self.readings)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def data_at(engine, claims) -> list[datetime | None]:
    with engine.connect() as conn:
        rows = dict(conn.execute(select(store.emails.c.id, store.emails.c.data_at)).all())
    return [rows[c.email_id] for c in claims]


def journal(engine, recorded=None) -> LedgerJournal:
    return LedgerJournal(engine, TickingClock(), DeliverySettings(), recorded or (lambda counts: None))


def claimed(engine, sends, n):
    ledger.enqueue(engine, sends(n), now=T0)
    return ledger.claim(engine, worker="w1", limit=n, now=T0, lease_seconds=60)


def test_records_asked_for_before_any_send_waits_share_one_write(engine, sends):
    """Records asked for as envelopes go out are written together once a send waits for its own, with the
    outcomes finished by then: one moment for all of them; a later record gets a write of its own."""
    first, second, third, late = claimed(engine, sends, 4)

    async def sends_in_flight():
        kept = journal(engine)
        waits = [kept.data_goes_out(claim) for claim in (first, second, third)]
        assert data_at(engine, [first]) == [None]  # asked for, not written until a send waits
        await waits[1]
        assert all(data_at(engine, [first, second, third]))
        await waits[0]  # already written: nothing more to wait for
        await kept.data_goes_out(late)
        kept.close()

    asyncio.run(sends_in_flight())
    moments = data_at(engine, [first, second, third, late])
    assert moments[0] == moments[1] == moments[2] and moments[3] > moments[0]


class FrozenClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when the test moves it: the journal's gathering window never
    passes while the host is slow, only when the test says so."""

    now = 0.0

    def time(self) -> float:
        return self.now


def assert_one_write(engine, loop, sends_on_connections, claims) -> None:
    """Run the sends on this loop, then check that their records were written at one moment, together."""
    try:
        loop.run_until_complete(sends_on_connections)
    finally:
        loop.close()
    moments = data_at(engine, claims)
    assert moments[0] is not None and len(set(moments)) == 1


def test_records_asked_for_a_moment_apart_share_one_write(engine, sends):
    """A send on another connection that reaches its data a few turns of the event loop after the first one
    waits joins the first one's write, with the outcome finished meanwhile: one write, not two."""
    done, first, second = claimed(engine, sends, 3)
    outcomes: list[ledger.RecordCounts] = []
    loop = FrozenClockLoop()

    async def two_connections():
        kept = journal(engine, outcomes.append)

        async def send(claim, turns_later):
            for _ in range(turns_later):
                await asyncio.sleep(0)
            if claim is second:
                kept.finished(ledger.Result(done.email_id, done.fence, "sent", code=250, reply="ok"))
            written = kept.data_goes_out(claim)
            if claim is second:  # the window the first send's wait opened passes only now
                loop.now += GATHER_SECONDS
            await written

        await asyncio.gather(send(first, 0), send(second, 3))
        kept.close()

    assert_one_write(engine, loop, two_connections(), [first, second])
    assert len(outcomes) == 1 and outcomes[0].sent == 1


def test_once_a_send_on_each_connection_waits_the_write_goes_without_its_gathering_moment(engine, sends):
    """With a send on each of the process's connections waiting for the pending write, no other record could
    join it: it is written on the next turn of the event loop, the gathering moment not passed, as one write."""
    first, second = claimed(engine, sends, 2)
    loop = FrozenClockLoop()  # its clock never moves: a write that waited for the moment would not come

    async def two_connections():
        kept = journal_for(engine, TickingClock(), DeliverySettings(), lambda counts: None, None, connections=2)
        both = asyncio.gather(kept.data_goes_out(first), kept.data_goes_out(second))
        for _ in range(10):
            if both.done():
                break
            await asyncio.sleep(0)
        assert both.done()
        kept.close()

    assert_one_write(engine, loop, two_connections(), [first, second])


def test_over_one_connection_a_write_waits_for_no_other(engine, sends):
    """A process sending over one connection has no other send whose record could join a write: each goes on
    the next turn of the event loop, and records asked for a few turns apart get writes of their own."""
    first, second = claimed(engine, sends, 2)
    single = journal_for(engine, TickingClock(), DeliverySettings(), lambda counts: None, None, connections=1)

    async def one_connection():
        async def send(claim, turns_later):
            for _ in range(turns_later):
                await asyncio.sleep(0)
            await single.data_goes_out(claim)

        await asyncio.gather(send(first, 0), send(second, 3))
        single.close()

    asyncio.run(one_connection())
    first_at, second_at = data_at(engine, [first, second])
    assert first_at is not None and second_at is not None and first_at < second_at


def test_a_record_nobody_waited_for_is_not_written(engine, sends):
    """A send whose envelope the server refused never waits for its record: the email is not marked as
    under way (a crash would send it back to the queue, not hold it as unknown); its outcome is recorded."""
    refused, = claimed(engine, sends, 1)
    outcomes = []

    async def refused_envelope():
        kept = journal(engine, outcomes.append)
        kept.data_goes_out(refused)
        kept.finished(ledger.Result(refused.email_id, refused.fence, "failed", code=550, reply="no such user"))
        kept.close()

    asyncio.run(refused_envelope())
    assert data_at(engine, [refused]) == [None] and outcomes[0].failed == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_write_that_meets_the_write_lock_lets_the_event_loop_go_on(engine, sends):
    """While another process holds SQLite's write lock, the send waiting for its record waits on the event
    loop (other sends go on), and its record is written as soon as the lock is free."""
    claim, = claimed(engine, sends, 1)
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def send_during_lock():
        kept = journal(engine)
        waiting = asyncio.ensure_future(kept.data_goes_out(claim))
        for _ in range(20):  # the loop keeps turning while the write waits for the lock
            await asyncio.sleep(0.001)
        assert not waiting.done() and data_at(engine, [claim]) == [None]
        other.rollback()
        await asyncio.wait_for(waiting, timeout=5)
        assert data_at(engine, [claim]) != [None]
        kept.close()

    try:
        asyncio.run(send_during_lock())
    finally:
        other.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_try_record_gives_up_at_once_and_the_connection_goes_back_patient(engine, sends):
    """try_record on an impatient connection writes nothing while another holds the write lock, and writes
    once it is free; the connection goes back to the pool waiting for locks again, as every other does."""
    claim, = claimed(engine, sends, 1)
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    how = {"now": T0, "max_attempts": 3, "backoff_seconds": 60, "in_flight": [(claim.email_id, claim.fence)]}
    try:
        with ledger.impatient_connection(engine) as conn:
            assert ledger.try_record(conn, [], **how) is None
            other.rollback()
            assert ledger.try_record(conn, [], **how) == ledger.RecordCounts(marked=1)
    finally:
        other.close()
    assert data_at(engine, [claim]) == [T0]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS


def test_outcomes_of_every_kind_and_the_next_marks_share_one_write(engine, sends):
    """On the journal's own connection one write records a sent, a retry (backed off by the attempts before),
    a failed and an unknown outcome, leaves out the late outcome of a row taken over, and marks the next
    emails; a second write finds that connection as it left it."""
    *finished, taken_over, after_one, after_two = claimed(engine, sends, 7)
    sent, retry, failed, unknown = finished
    with engine.begin() as conn:  # another worker's claim moved the fence on
        conn.execute(update(store.emails).where(store.emails.c.id == taken_over.email_id)
                     .values(fence=taken_over.fence + 1))
    results = [ledger.Result(sent.email_id, sent.fence, "sent", code=250, reply="ok", delivered=("a@example.com",)),
               ledger.Result(retry.email_id, retry.fence, "retry", code=451, reply="later"),
               ledger.Result(failed.email_id, failed.fence, "failed", code=550, reply="no such user",
                             refused={"a@example.com": [550, "no such user"]}),
               ledger.Result(unknown.email_id, unknown.fence, "unknown", error="no reply to the final dot"),
               ledger.Result(taken_over.email_id, taken_over.fence, "sent", code=250, reply="late")]
    how = {"now": T0, "max_attempts": 3, "backoff_seconds": 60}
    with ledger.impatient_connection(engine) as conn:
        counts = ledger.try_record(conn, results, in_flight=[(after_one.email_id, after_one.fence)], **how)
        again = ledger.try_record(conn, [], in_flight=[(after_two.email_id, after_two.fence)], **how)
    assert counts == ledger.RecordCounts(sent=1, retry=1, failed=1, unknown=1, fenced_out=1, marked=1)
    assert again == ledger.RecordCounts(marked=1)
    with engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(select(store.emails))}
    assert [rows[c.email_id].status for c in finished] == ["sent", "retry", "failed", "unknown"]
    assert rows[retry.email_id].next_attempt_at == T0 + timedelta(seconds=60) and rows[retry.email_id].attempts == 1
    assert rows[failed.email_id].refused is not None and rows[sent.email_id].delivered is not None
    assert rows[taken_over.email_id].status == "sending" and rows[taken_over.email_id].reply is None
    assert data_at(engine, [after_one, after_two]) == [T0, T0]
    assert all(rows[c.email_id].lease_until is None for c in finished)
