"""The journal's ledger writes on PostgreSQL are awaited on the event loop: while one is held by a row lock
another connection holds, the event loop goes on, the marks and outcomes that arrive meanwhile gather into
the next write, and that write carries every outcome finished before its marks."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from sqlalchemy import Connection, Engine, create_engine, select, text, update

from dunning import ledger, store
from dunning.errors import DatabaseUnavailable, LeaseLost
from dunning.run.server_journal import ServerJournal, ledger_writes

from .test_journal import TickingClock, claimed, closed, data_at, journal

pytestmark = pytest.mark.postgres

BLOCKED_PATIENCE_SECONDS = 10  # how long a test waits for the server to report the write as blocked


@pytest.fixture
def engine(postgres_url: str):
    """A migrated, empty store on PostgreSQL."""
    engine = store.connect(postgres_url)
    yield engine
    engine.dispose()


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


def test_the_journal_on_postgresql_writes_on_a_connection_of_its_own_opened_from_the_url(engine, sends):
    """A delivery process on PostgreSQL keeps its journal on a connection of its own, opened from the
    engine's URL: its write lands in the schema the URL's options name, on a session outside the engine's pool."""
    claim, = claimed(engine, sends, 1)

    async def one_write():
        async with ledger_writes(engine) as writes:
            kept = journal(engine, writes=writes)
            assert isinstance(kept, ServerJournal)
            await kept.data_goes_out(claim)
            await kept.close()
            with engine.connect() as conn:
                sessions = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                             "AND query LIKE 'WITH outcome AS%'")).scalar_one()
            assert sessions >= 1 and engine.pool.checkedout() == 0

    asyncio.run(one_write())
    assert data_at(engine, [claim])[0] is not None


def test_while_a_write_waits_on_the_server_other_sends_go_on_and_join_the_next(engine, sends):
    """A send's mark held by a row lock on the server: the event loop goes on, two other sends ask for their
    marks and an outcome finishes meanwhile, and none of it is written; once the lock is let go, the first
    send goes on, then the three are written together: one more write, one moment."""
    first, second, third, done = claimed(engine, sends, 4)
    other, pid = held(engine, first)
    clock = TickingClock()

    async def sends_meanwhile():
        kept = journal(engine, clock=clock)
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
        await closed(kept)

    try:
        asyncio.run(sends_meanwhile())
    finally:
        other.close()
    moments = data_at(engine, [first, second, third])
    finished, = rows(engine, [done])
    assert moments[1] == moments[2] == finished.updated_at and moments[1] > moments[0]
    assert finished.status == "sent" and clock.readings == 2  # two writes, no more


def test_a_mark_waits_for_the_write_that_carries_the_outcome_finished_before_it(engine, sends):
    """The order promise: an outcome finished while a write is on its way is not in that write; the mark
    asked for after it is written with it, and its send goes on only once both are."""
    first, before, after = claimed(engine, sends, 3)
    other, pid = held(engine, first)

    async def chained():
        kept = journal(engine)
        waiting = asyncio.ensure_future(kept.data_goes_out(first))
        await blocked_by(engine, pid)
        kept.finished(ledger.Result(before.email_id, before.fence, "failed", code=550, reply="no such user"))
        next_one = asyncio.ensure_future(kept.data_goes_out(after))
        await asyncio.sleep(0)
        assert [row.status for row in rows(engine, [before])] == ["sending"]
        other.rollback()
        await asyncio.wait_for(waiting, timeout=5)
        assert not next_one.done()  # its write starts once the one before landed
        await asyncio.wait_for(next_one, timeout=5)
        outcome, = rows(engine, [before])
        assert outcome.status == "failed" and outcome.updated_at == data_at(engine, [after])[0]
        await closed(kept)

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
        await closed(kept)

    asyncio.run(sends_of_two_writes())
    assert data_at(engine, [alongside, later])[1] is not None


def test_close_waits_for_the_write_on_its_way_then_records_the_outcomes_left(engine, sends):
    """A batch that stops while a write waits on the server: close returns only once it has landed, then
    records the outcomes finished meanwhile; nothing is left on its way."""
    first, done = claimed(engine, sends, 2)
    other, pid = held(engine, first)
    recorded: list[ledger.RecordCounts] = []

    async def stopped_batch():
        kept = journal(engine, recorded.append)
        waiting = asyncio.ensure_future(kept.data_goes_out(first))
        await blocked_by(engine, pid)
        waiting.cancel()  # the batch stops: nobody waits for the write any more
        kept.finished(ledger.Result(done.email_id, done.fence, "sent", code=250, reply="ok"))
        closing = asyncio.ensure_future(closed(kept))
        for _ in range(10):
            await asyncio.sleep(0)
        assert not closing.done() and not recorded
        other.rollback()
        await asyncio.wait_for(closing, timeout=5)
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
                assert data_at(engine, [first])[0] is not None and not next_one.done()
                for _ in range(10):  # a block that awaits still holds the next write back
                    await asyncio.sleep(0)
                assert data_at(engine, [second]) == [None]

        beating = asyncio.ensure_future(beat())
        next_one = asyncio.ensure_future(kept.data_goes_out(second))
        for _ in range(10):
            await asyncio.sleep(0)
        assert not inside.is_set()
        other.rollback()
        await asyncio.wait_for(beating, timeout=5)
        await asyncio.wait_for(asyncio.gather(waiting, next_one), timeout=5)
        await closed(kept)

    try:
        asyncio.run(heartbeat_meanwhile())
    finally:
        other.close()
    assert all(data_at(engine, [first, second]))


def test_a_connection_the_server_dropped_between_batches_is_opened_anew(engine, sends):
    """The server ends the writes' connection while it is idle between two batches: the next batch's first
    write finds it gone and writes on a new one, as the engine's pool would give."""
    first, second = claimed(engine, sends, 2)

    async def two_batches():
        async with ledger_writes(engine) as writes:
            kept = journal(engine, writes=writes)
            await kept.data_goes_out(first)
            await kept.close()
            with engine.begin() as conn:
                ended = conn.execute(text("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                                          "pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'idle' AND "
                                          "query LIKE 'WITH outcome AS%'")).scalar_one()
            assert ended >= 1
            kept = journal(engine, writes=writes)  # the next batch
            await kept.data_goes_out(second)
            await kept.close()

    asyncio.run(two_batches())
    assert all(data_at(engine, [first, second]))


def test_a_server_that_cannot_be_reached_is_the_projects_error(engine, sends):
    """The writes' connection to a server that refuses it raises DatabaseUnavailable naming the URL (never a
    password), in the send that waits for the write."""
    claim, = claimed(engine, sends, 1)
    nowhere = create_engine(engine.url.set(port=_free_port(), password="s3cret"))

    async def send():
        async with ledger_writes(nowhere) as writes:
            kept = journal(engine, writes=writes)
            with pytest.raises(DatabaseUnavailable, match="cannot connect to") as raised:
                await kept.data_goes_out(claim)
            assert "s3cret" not in str(raised.value)

    asyncio.run(send())
    assert data_at(engine, [claim]) == [None]


def _free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
