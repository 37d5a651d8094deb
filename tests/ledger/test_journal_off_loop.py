"""The journal's ledger writes on PostgreSQL wait for the server on a thread of their own: while one is held
by a row lock another connection holds, the event loop goes on, the marks and outcomes that arrive meanwhile
gather into the next write, and that write carries every outcome finished before its marks."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import Connection, Engine, select, text, update

from dunning import ledger, store
from dunning.errors import LeaseLost
from dunning.run.journal import LedgerJournal
from dunning.settings import DeliverySettings

from .test_journal import TickingClock, claimed, data_at

pytestmark = pytest.mark.postgres

BLOCKED_PATIENCE_SECONDS = 10  # how long a test waits for the server to report the write as blocked


@pytest.fixture
def engine(postgres_url: str):
    """A migrated, empty store on PostgreSQL."""
    engine = store.connect(postgres_url)
    yield engine
    engine.dispose()


def journal(engine: Engine, clock: TickingClock | None = None, recorded=None) -> LedgerJournal:
    return LedgerJournal(engine, clock or TickingClock(), DeliverySettings(), recorded or (lambda counts: None))


def held(engine: Engine, claim: ledger.Claim) -> tuple[Connection, int]:
    """Another connection holding the row lock of the claim's email until it rolls back (or, should the test
    never get to it, until the server ends its session: a write that held the event loop fails the test
    rather than hang it), and the pid of its session."""
    conn = engine.connect()
    conn.exec_driver_sql("SET idle_in_transaction_session_timeout = '5s'")
    conn.execute(update(store.emails).where(store.emails.c.id == claim.email_id)
                 .values(updated_at=store.emails.c.updated_at))
    return conn, conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


async def blocked_by(engine: Engine, holder: int) -> None:
    """Return once the server reports a statement waiting for a lock the holder's session holds."""
    deadline = time.monotonic() + BLOCKED_PATIENCE_SECONDS
    query = text("SELECT count(*) FROM pg_stat_activity WHERE CAST(:holder AS integer) = ANY(pg_blocking_pids(pid))")
    while True:
        with engine.connect() as conn:
            if conn.execute(query, {"holder": holder}).scalar_one():
                return
        assert time.monotonic() < deadline, "no write waits for the lock"
        await asyncio.sleep(0.01)


def rows(engine: Engine, claims) -> list:
    with engine.connect() as conn:
        found = {row.id: row for row in conn.execute(select(store.emails))}
    return [found[c.email_id] for c in claims]


def test_while_a_write_waits_on_the_server_other_sends_go_on_and_join_the_next(engine, sends):
    """A send's mark held by a row lock on the server: the event loop goes on, two other sends ask for their
    marks and an outcome finishes meanwhile, and none of it is written; once the lock is let go, the first
    send goes on, then the three are written together: one more write, one moment."""
    first, second, third, done = claimed(engine, sends, 4)
    other, pid = held(engine, first)
    clock = TickingClock()

    async def sends_meanwhile():
        kept = journal(engine, clock)
        waiting = asyncio.ensure_future(kept.data_goes_out(first))
        await blocked_by(engine, pid)
        later = [asyncio.ensure_future(kept.data_goes_out(claim)) for claim in (second, third)]
        kept.finished(ledger.Result(done.email_id, done.fence, "sent", code=250, reply="ok"))
        for _ in range(10):  # the event loop keeps turning while the write waits
            await asyncio.sleep(0)
        assert not waiting.done() and not any(send.done() for send in later)
        assert data_at(engine, [first, second, third]) == [None, None, None]
        assert [row.status for row in rows(engine, [done])] == ["sending"]
        other.rollback()
        await asyncio.wait_for(waiting, timeout=5)
        await asyncio.wait_for(asyncio.gather(*later), timeout=5)
        kept.close()

    try:
        asyncio.run(sends_meanwhile())
    finally:
        other.close()
    moments = data_at(engine, [first, second, third])
    finished, = rows(engine, [done])
    assert moments[1] == moments[2] == finished.updated_at and moments[1] > moments[0]
    assert finished.status == "sent" and clock.readings == 2  # two writes, no more


def test_a_mark_waits_for_the_write_that_carries_the_outcome_finished_before_it(engine, sends):
    """The order promise across the thread: an outcome finished while a write is on its way is not in that
    write; the mark asked for after it is written with it, and its send goes on only once both are."""
    first, before, after = claimed(engine, sends, 3)
    other, pid = held(engine, first)

    async def chained():
        kept = journal(engine)
        waiting = asyncio.ensure_future(kept.data_goes_out(first))
        await blocked_by(engine, pid)
        kept.finished(ledger.Result(before.email_id, before.fence, "failed", code=550, reply="no such user"))
        next_one = asyncio.ensure_future(kept.data_goes_out(after))
        await asyncio.sleep(0)
        other.rollback()
        await asyncio.wait_for(waiting, timeout=5)
        assert not next_one.done()  # its write starts once the one before landed
        await asyncio.wait_for(next_one, timeout=5)
        outcome, = rows(engine, [before])
        assert outcome.status == "failed" and outcome.updated_at == data_at(engine, [after])[0]
        kept.close()

    try:
        asyncio.run(chained())
    finally:
        other.close()


def test_a_mark_whose_row_was_taken_over_stops_the_sends_waiting_on_its_write_alone(engine, sends):
    """LeaseLost reaches every send of the write with a mark taken over, and no other."""
    taken, alongside, later = claimed(engine, sends, 3)
    with engine.begin() as conn:
        conn.execute(update(store.emails).where(store.emails.c.id == taken.email_id).values(fence=taken.fence + 1))

    async def sends_of_two_writes():
        kept = journal(engine)
        both = [asyncio.ensure_future(kept.data_goes_out(claim)) for claim in (taken, alongside)]
        failed = await asyncio.gather(*both, return_exceptions=True)
        assert all(isinstance(exc, LeaseLost) for exc in failed)
        await asyncio.wait_for(kept.data_goes_out(later), timeout=5)
        kept.close()

    asyncio.run(sends_of_two_writes())
    assert data_at(engine, [alongside, later])[1] is not None


def test_close_waits_for_the_write_on_its_way_then_records_the_outcomes_left(engine, sends):
    """A batch that stops while a write waits on the server: close blocks until it has landed (the row lock
    let go from another thread), then records the outcomes finished meanwhile; nothing is left on its way."""
    first, done = claimed(engine, sends, 2)
    other, pid = held(engine, first)
    recorded: list[ledger.RecordCounts] = []

    async def stopped_batch():
        kept = journal(engine, recorded=recorded.append)
        waiting = asyncio.ensure_future(kept.data_goes_out(first))
        await blocked_by(engine, pid)
        waiting.cancel()  # the batch stops: nobody waits for the write any more
        kept.finished(ledger.Result(done.email_id, done.fence, "sent", code=250, reply="ok"))
        letting_go = threading.Timer(0.1, other.rollback)
        letting_go.start()
        kept.close(complete=False)
        letting_go.join()
        assert data_at(engine, [first])[0] is not None  # its write landed before close returned

    try:
        asyncio.run(stopped_batch())
    finally:
        other.close()
    assert [row.status for row in rows(engine, [first, done])] == ["sending", "sent"]
    assert recorded == [ledger.RecordCounts(sent=1)]


def test_still_waits_for_the_write_on_its_way_and_holds_back_the_next(engine, sends):
    """Inside still() (where the heartbeat extends the batch's leases) no write is on its way: it is entered
    once the write held on the server has landed, and a mark asked for meanwhile is written after it."""
    first, second = claimed(engine, sends, 2)
    other, pid = held(engine, first)

    async def heartbeat_meanwhile():
        kept = journal(engine)
        waiting = asyncio.ensure_future(kept.data_goes_out(first))
        await blocked_by(engine, pid)
        inside = asyncio.Event()

        async def beat():
            async with kept.still():
                inside.set()
                assert data_at(engine, [first, second])[0] is not None and not next_one.done()
                assert data_at(engine, [second]) == [None]

        beating = asyncio.ensure_future(beat())
        next_one = asyncio.ensure_future(kept.data_goes_out(second))
        for _ in range(10):
            await asyncio.sleep(0)
        assert not inside.is_set()
        other.rollback()
        await asyncio.wait_for(beating, timeout=5)
        await asyncio.wait_for(asyncio.gather(waiting, next_one), timeout=5)
        kept.close()

    try:
        asyncio.run(heartbeat_meanwhile())
    finally:
        other.close()
    assert all(data_at(engine, [first, second]))
