"""The ledger journal on a database server (see journal): its writes awaited on the delivery process's event loop.

Each write is one statement on a connection of the process's own (store.AsyncLedger), sent and then awaited:
while the server works on it (or waits for a row lock), the event loop goes on, other sends read their
replies, render and reach their own data, and every record they ask for and every outcome that finishes
meanwhile go into the next write, which starts as soon as this one has landed. One write is on its way at a
time, so an outcome finished before a mark is asked for is written with that mark or before it. A send's data
goes out only once the write holding its record has committed; a write that finds a mark's row taken over
raises LeaseLost in the sends of that write. The heartbeat extends the batch's leases inside still(), when no
write is on its way (the two statements would lock the same rows in orders of their own); close waits for a
write on its way before it records the outcomes left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import Engine

from dunning import ledger, store
from dunning.errors import LeaseLost
from dunning.run.clock import Clock
from dunning.run.flight import FlightLog
from dunning.run.journal import GATHER_SECONDS, FlightJournal, Journal, LedgerJournal, MarkingJournal
from dunning.settings import DeliverySettings

__all__ = ["ServerJournal", "journal_for", "ledger_writes"]


@asynccontextmanager
async def ledger_writes(engine: Engine) -> AsyncIterator[store.AsyncLedger | None]:
    """The delivery process's own connection for its ledger writes, where the database offers one (closed on
    the way out); None elsewhere."""
    writes = store.backend_of(engine).async_ledger(engine)
    try:
        yield writes
    finally:
        if writes is not None:
            await writes.aclose()


def journal_for(engine: Engine, clock: Clock, delivery: DeliverySettings,
                recorded: Callable[[ledger.RecordCounts], None], flight: FlightLog | None, *,
                writes: store.AsyncLedger | None = None, connections: int = 1) -> Journal:
    """The journal of one batch: in the process's flight log when it has one, else in the ledger, awaited on
    the process's own connection when it has one (its first write gathered when the process sends over
    several connections: on one, no other send could join it)."""
    gather_seconds = GATHER_SECONDS if connections > 1 else 0
    if flight is not None:
        return FlightJournal(engine, clock, delivery, recorded, flight)
    if writes is not None:
        return ServerJournal(engine, clock, delivery, recorded, writes, gather_seconds=gather_seconds)
    return LedgerJournal(engine, clock, delivery, recorded, gather_seconds=gather_seconds)


class ServerJournal(MarkingJournal):
    """Marks and outcomes written by one awaited statement at a time, each carrying all that arrived meanwhile."""

    def __init__(self, engine: Engine, clock: Clock, delivery: DeliverySettings,
                 recorded: Callable[[ledger.RecordCounts], None], writes: store.AsyncLedger, *,
                 gather_seconds: float = GATHER_SECONDS) -> None:
        super().__init__(engine, clock, delivery, recorded, gather_seconds=gather_seconds)
        self.writes = writes  # the process's, closed by its owner
        writes.batch_begins()
        self._due: asyncio.Handle | None = None  # its start, after the gathering moment
        self._flying: asyncio.Task[None] | None = None  # the write on its way
        self._holding = False  # no write may start (still)

    @asynccontextmanager
    async def still(self) -> AsyncIterator[None]:
        """The write on its way, if any, is waited for, and the next starts only after the block."""
        self._holding = True
        try:
            while self._flying is not None:
                await asyncio.wait({self._flying})
            yield
        finally:
            self._holding = False
            self._send_off()

    async def close(self, *, complete: bool = True) -> None:
        """Wait for the write on its way, then record the outcomes not recorded yet (the batch is done).

        Records asked for by sends that never reached DATA are not written: those emails have their outcome.
        """
        if self._due is not None:
            self._due.cancel()
        self._scheduled, self._due = False, None
        while self._flying is not None:
            await asyncio.wait({self._flying})
        finished, self._finished = self._finished, []
        if finished:
            counts = await self._record(finished, [])
            self._recorded(counts)

    def needed(self, written: asyncio.Future[None]) -> None:
        """A send waits for this write: it starts gather_seconds later (0: on the next turn of the loop), or as
        soon as the write on its way has landed."""
        if written is self._written and not self._scheduled:
            self._scheduled = True
            if self._flying is None:
                loop = asyncio.get_running_loop()
                self._due = (loop.call_later(self._gather_seconds, self._send_off) if self._gather_seconds
                             else loop.call_soon(self._send_off))

    def _send_off(self) -> None:
        """Start the write of every mark asked for and every outcome finished until now, if a send waits for it
        and nothing holds it back."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if not self._scheduled or self._holding or self._flying is not None:
            return
        starting, written, finished = self._starting, self._written, self._finished
        assert written is not None
        self._starting, self._written, self._scheduled, self._finished = [], None, False, []
        self._flying = asyncio.get_running_loop().create_task(self._write_off(finished, starting, written))

    async def _write_off(self, finished: list[ledger.Result], starting: list[tuple[int, int]],
                         written: asyncio.Future[None]) -> None:
        """One write on its way: its sends go on once it lands (or stop with its failure), then the next starts."""
        try:
            counts = await self._record(finished, starting)
        except Exception as exc:  # its outcomes are written by the next write, or by close
            self._finished[:0] = finished
            _fail(written, exc)
        else:
            try:
                self._written_up(finished, starting, counts)
            except LeaseLost as exc:
                _fail(written, exc)
            else:
                written.set_result(None)
        finally:
            self._flying = None
        self._send_off()

    async def _record(self, finished: list[ledger.Result], starting: list[tuple[int, int]]) -> ledger.RecordCounts:
        self.stages.lap("smtp")
        try:
            return await ledger.record_async(self.writes, finished, now=self._clock.now(),
                                             max_attempts=self._delivery.max_attempts,
                                             backoff_seconds=self._delivery.retry_backoff_seconds,
                                             in_flight=starting)
        finally:
            self.stages.lap("record")


def _fail(written: asyncio.Future[None], exc: BaseException) -> None:
    """Every send waiting on this write stops with exc (none may wait any more: the batch is being closed)."""
    written.set_exception(exc)
    written.exception()  # retrieved by each waiting send through its shield, if any is left
