"""What a delivery process writes while a batch is being sent, so that a crash leaves only what was in flight.

Beside a database file, the process's flight log records each email whose data goes out and each outcome
as it happens, and the ledger gets the outcomes when the batch is done (FlightJournal; see flight). Elsewhere
(a database server, whose deliverers may run on several machines), the ledger itself records it, as follows
(LedgerJournal).

Before a send lets its message data go out, the ledger records that the email's data is under way;
the outcomes of sends that have finished are recorded in the same statement, and the writes of a
batch share one connection. A send asks for its record as its envelope (MAIL, RCPT, DATA) goes out,
or, behind a send still awaiting its final reply on a pipelined connection, once that send has returned
its outcome (the transport sees to it); the record is written only once some send waits for it, after
the server's reply to DATA: every record asked for by then, by the process's other connections too, and
every outcome finished by then share that one write. So an email's outcome is recorded before the next
email's data goes out on its connection, and after a crash at most one email per connection can be
without an outcome: an email whose lease ran out is unknown only if its record was written and no
outcome was; the others go back to the queue.

On PostgreSQL the write waits for the server on a thread of its own (writer), one write at a time: the
event loop goes on meanwhile, other sends read their replies, render and reach their own data, and every
record they ask for and every outcome that finishes while one write is on its way go into the next, which
starts as soon as that one has landed. A send's data goes out only once the write holding its record has
committed; the slower the server, the more each write gathers. A thread rather than psycopg's async
connection: the ledger's write is the same code on either database, SQLAlchemy's pool and its failures
(a server gone, a full disk) stay as they are, and libpq lets go of the interpreter while it waits.
close waits for a write on its way before it records the outcomes left.

A database in memory (SQLite, whose one write lock covers the whole database, and whose connection the
pool gives each thread its own) writes on the event loop: when another process holds the write lock, the
write is tried again a moment later instead of waiting in SQLite (which would stop the event loop with it):
meanwhile the other sends go on rendering and reading replies, and those that reach their data join the
write.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from contextlib import ExitStack, asynccontextmanager
from functools import partial

from sqlalchemy import Connection, Engine

from dunning import ledger, store
from dunning.errors import LeaseLost
from dunning.run.clock import Clock
from dunning.run.flight import FlightLog
from dunning.run.stages import OFF, Stages
from dunning.run.writer import WRITTEN, Writer, Written
from dunning.settings import DeliverySettings

__all__ = ["Journal", "FlightJournal", "LedgerJournal", "journal_for"]

BUSY_RETRY_SECONDS = 0.001  # between two tries of a write while another process holds the write lock
BUSY_PATIENCE_SECONDS = 1.0  # then the write waits for the lock in SQLite, as every other write does


class Journal(ABC):
    """What a batch's sends say as they go: which claimed emails' data goes out, and each finished outcome.

    Two ways, chosen once per delivery process (journal_for): a flight log beside a database file, or the
    ledger itself."""

    def __init__(self, engine: Engine, clock: Clock, delivery: DeliverySettings,
                 recorded: Callable[[ledger.RecordCounts], None]) -> None:
        self._engine, self._clock, self._delivery, self._recorded = engine, clock, delivery, recorded
        self._finished: list[ledger.Result] = []
        self.stages: Stages = OFF   # where a run's profile counts the CPU of the writes

    @abstractmethod
    def data_goes_out(self, claim: ledger.Claim) -> Awaitable[None]:
        """Record that this email's data goes out; awaiting the result returns once it is recorded."""

    def finished(self, result: ledger.Result) -> None:
        """An outcome to record with the next write (or by close)."""
        self._finished.append(result)

    @asynccontextmanager
    async def still(self) -> AsyncIterator[None]:
        """Inside (a block that does not await), no write of this journal is on its way."""
        yield

    def close(self, *, complete: bool = True) -> None:
        """Record the outcomes not recorded yet: the batch is done (complete: False, it stopped on a failure,
        and sends may have ended with their data out and no outcome)."""
        self._write([], record=ledger.record, bind=self._engine)

    def _write(self, starting: list[tuple[int, int]], *, record: Callable[..., ledger.RecordCounts | None],
               bind: Engine | Connection) -> bool:
        """One write of the finished outcomes and the starting marks; False if it must be tried again."""
        finished = self._finished
        if not finished and not starting:
            return True
        self.stages.lap("smtp")   # a write may run as a callback of the event loop, between two sends
        counts = record(bind, finished, now=self._clock.now(), max_attempts=self._delivery.max_attempts,
                        backoff_seconds=self._delivery.retry_backoff_seconds, in_flight=starting)
        self.stages.lap("record")
        if counts is None:
            return False
        self._finished = []
        self._written_up(finished, starting, counts)
        return True

    def _written_up(self, finished: list[ledger.Result], starting: list[tuple[int, int]],
                    counts: ledger.RecordCounts) -> None:
        """A write of these outcomes and marks is done: count the outcomes; LeaseLost if a mark found its row
        taken over."""
        if finished:
            self._recorded(counts)
        # A mark whose email has its outcome in the same write (its envelope was refused) finds no row to mark.
        expected = len(set(starting) - {(result.email_id, result.fence) for result in finished})
        if counts.marked < expected:  # a row taken over, or expired, since this process claimed it
            raise LeaseLost(f"lease lost: {expected - counts.marked} of {expected} emails about to go out are no "
                            "longer this process's (their lease ran out and another took them over)")


def journal_for(engine: Engine, clock: Clock, delivery: DeliverySettings,
                recorded: Callable[[ledger.RecordCounts], None], flight: FlightLog | None) -> Journal:
    """The journal of one batch: in the process's flight log when it has one, else in the ledger."""
    if flight is not None:
        return FlightJournal(engine, clock, delivery, recorded, flight)
    return LedgerJournal(engine, clock, delivery, recorded)


class FlightJournal(Journal):
    """Appends to the delivery process's flight log as the sends go; the ledger gets the outcomes by close."""

    def __init__(self, engine: Engine, clock: Clock, delivery: DeliverySettings,
                 recorded: Callable[[ledger.RecordCounts], None], flight: FlightLog) -> None:
        super().__init__(engine, clock, delivery, recorded)
        self._flight = flight

    def data_goes_out(self, claim: ledger.Claim) -> Awaitable[None]:
        """The line is appended at once, as the envelope goes out (an envelope refused then has its outcome
        logged too, so the email is not in doubt)."""
        self._flight.under_way(claim.email_id, claim.fence)
        return WRITTEN

    def finished(self, result: ledger.Result) -> None:
        """Logged now, recorded in the ledger by close."""
        super().finished(result)
        self._flight.finished(result)

    def close(self, *, complete: bool = True) -> None:
        """Record the outcomes in the ledger, then empty the log: the ledger has every outcome it holds. A batch
        that stopped on a failure keeps its log: what it says was under way is unknown at the replay."""
        super().close()
        if complete:
            self._flight.empty()


class LedgerJournal(Journal):
    """Marks claimed emails whose data goes out in the ledger, and records finished outcomes, many in one write."""

    def __init__(self, engine: Engine, clock: Clock, delivery: DeliverySettings,
                 recorded: Callable[[ledger.RecordCounts], None]) -> None:
        super().__init__(engine, clock, delivery, recorded)
        self._starting: list[tuple[int, int]] = []
        self._written: asyncio.Future[None] | None = None  # the write the marks in _starting wait for
        self._scheduled = False  # some send waits for that write, and it is due to start (or its next try)
        self._first_try: float | None = None  # loop time of its first try
        self._due: asyncio.Handle | None = None
        self._connection: Connection | None = None
        self._held = ExitStack()
        self._writer: Writer[ledger.RecordCounts | None] | None = None  # where the writes wait off the loop
        self._holding = False  # no write may start (still)
        self._quiet: asyncio.Future[None] | None = None  # set once the write on its way has landed
        if store.backend_of(engine).writes_off_the_loop:
            self._writer = Writer()

    def data_goes_out(self, claim: ledger.Claim) -> Awaitable[None]:
        """Ask for the record that this email's data goes out; awaiting the result returns once it is written
        (left unawaited, when the server refused the envelope, the record waits for the next write)."""
        self._starting.append((claim.email_id, claim.fence))
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        return Written(self.needed, self._written)

    def needed(self, written: asyncio.Future[None]) -> None:
        """A send waits for this write: once every send ready in this turn waits too, it starts (off the loop,
        or once the write on its way has landed; a write already on its way needs nothing more)."""
        if written is self._written and not self._scheduled:
            self._scheduled = True
            if self._writer is None:
                self._due = asyncio.get_running_loop().call_soon(self._try_write)
            elif not self._writer.busy:
                self._due = asyncio.get_running_loop().call_soon(self._send_off)

    @asynccontextmanager
    async def still(self) -> AsyncIterator[None]:
        """The write on its way, if any, is waited for, and the next starts only after the block."""
        self._holding = True
        try:
            while self._writer is not None and self._writer.busy:
                self._quiet = asyncio.get_running_loop().create_future()
                await self._quiet
            yield
        finally:
            self._holding = False
            if self._scheduled and self._writer is not None and not self._writer.busy:
                self._send_off()

    def close(self, *, complete: bool = True) -> None:
        """Record the outcomes not recorded yet (the batch is done) and give the connection back; a write on
        its way is waited for first.

        Records asked for by sends that never reached DATA are not written: those emails have their outcome.
        """
        if self._due is not None:  # no send waits for it any more: the batch is over
            self._due.cancel()
        self._scheduled = False
        try:
            if self._writer is not None:
                self._writer.close()
            super().close()
        finally:
            self._connection = None
            self._held.close()

    def _impatient(self) -> Connection:
        if self._connection is None:
            self._connection = self._held.enter_context(ledger.impatient_connection(self._engine))
        return self._connection

    def _taken(self) -> tuple[list[tuple[int, int]], asyncio.Future[None]]:
        """The marks of the write that starts now and what their sends wait for; the next ones wait for the next."""
        starting, written = self._starting, self._written
        assert written is not None
        self._starting, self._written, self._scheduled, self._first_try, self._due = [], None, False, None, None
        return starting, written

    def _try_write(self) -> None:
        """The write on the event loop, tried again a moment later while another process holds the write lock."""
        self._due, written = None, self._written
        assert written is not None
        loop = asyncio.get_running_loop()
        if self._first_try is None:
            self._first_try = loop.time()
        patient = loop.time() - self._first_try < BUSY_PATIENCE_SECONDS
        try:
            # While patient, on the journal's own connection, which gives up at once if the write lock is taken.
            done = (self._write(self._starting, record=ledger.try_record, bind=self._impatient()) if patient
                    else self._write(self._starting, record=ledger.record, bind=self._engine))
        except Exception as exc:  # every send waiting on this write stops with it
            done = True
            written.set_exception(exc)
        if not done:  # sends that reach their data meanwhile join this write
            self._due = loop.call_later(BUSY_RETRY_SECONDS, self._try_write)
            return
        self._taken()
        if not written.done():
            written.set_result(None)

    def _send_off(self) -> None:
        """The write on the writer's thread: every mark asked for and every outcome finished until now."""
        assert self._writer is not None
        if self._holding:  # started once the block is over
            return
        (starting, written), finished = self._taken(), self._finished
        self._finished = []
        now, delivery = self._clock.now(), self._delivery

        def write() -> ledger.RecordCounts | None:  # on the writer's thread: the connection is used by it alone
            return ledger.try_record(self._impatient(), finished, now=now, max_attempts=delivery.max_attempts,
                                     backoff_seconds=delivery.retry_backoff_seconds, in_flight=starting)

        self._writer.start(write, partial(self._landed, finished, starting, written))

    def _landed(self, finished: list[ledger.Result], starting: list[tuple[int, int]], written: asyncio.Future[None],
                flying: Future[ledger.RecordCounts | None]) -> None:
        """On the event loop: the sends of the write go on (or stop with its failure), and the next starts."""
        assert self._writer is not None
        self.stages.elsewhere("record", self._writer.spent)
        try:
            counts = flying.result()
            assert counts is not None  # row locks are waited for, never given up on
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
        if self._quiet is not None and not self._quiet.done():
            self._quiet.set_result(None)
        if self._scheduled:
            self._send_off()


def _fail(written: asyncio.Future[None], exc: BaseException) -> None:
    """Every send waiting on this write stops with exc (none may wait any more: the batch is being closed)."""
    written.set_exception(exc)
    written.exception()  # retrieved by each waiting send through its shield, if any is left
