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
the server's reply to DATA, a moment later (GATHER_SECONDS), or on the next turn of the event loop once a
send on each of the process's connections waits (no other record could join): every record asked for by
then, by the process's other connections too, and every outcome finished by then share that one write,
and each waiting send is woken once it is done. So an email's
outcome is recorded before the next email's data goes out on its connection, and after a crash at most
one email per connection can be without an outcome: an email whose lease ran out is unknown only if its
record was written and no outcome was; the others go back to the queue.

When another process holds the database's write lock, the write is tried again a moment later instead of
waiting in SQLite (which would stop the event loop with it): meanwhile the other sends go on
rendering and reading replies, and those that reach their data join the write.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator
from contextlib import ExitStack
from typing import Any

from sqlalchemy import Connection, Engine

from dunning import ledger
from dunning.errors import LeaseLost
from dunning.run.clock import Clock
from dunning.run.flight import FlightLog
from dunning.run.stages import OFF, Stages
from dunning.settings import DeliverySettings

__all__ = ["Journal", "FlightJournal", "LedgerJournal", "journal_for"]

BUSY_RETRY_SECONDS = 0.001  # between two tries of a write while another process holds the write lock
BUSY_PATIENCE_SECONDS = 1.0  # then the write waits for the lock in SQLite, as every other write does
# How long the first send that waits for a write lets others join it: each write is a round trip that holds the
# event loop and costs the server a statement, whatever it holds; gathered, a write holds records of several.
GATHER_SECONDS = 0.001


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
        if finished:
            self._recorded(counts)
        # A mark whose email has its outcome in the same write (its envelope was refused) finds no row to mark.
        expected = len(set(starting) - {(result.email_id, result.fence) for result in finished})
        if counts.marked < expected:  # a row taken over, or expired, since this process claimed it
            raise LeaseLost(f"lease lost: {expected - counts.marked} of {expected} emails about to go out are no "
                            "longer this process's (their lease ran out and another took them over)")
        return True


def journal_for(engine: Engine, clock: Clock, delivery: DeliverySettings,
                recorded: Callable[[ledger.RecordCounts], None], flight: FlightLog | None, *,
                connections: int = 1) -> Journal:
    """The journal of one batch: in the process's flight log when it has one, else in the ledger (its writes
    gathered when the process sends over several connections: on one, no other send could join them)."""
    if flight is not None:
        return FlightJournal(engine, clock, delivery, recorded, flight)
    return LedgerJournal(engine, clock, delivery, recorded, gather_seconds=GATHER_SECONDS if connections > 1 else 0,
                         connections=connections)


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
        return _WRITTEN

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
                 recorded: Callable[[ledger.RecordCounts], None], *, gather_seconds: float = GATHER_SECONDS,
                 connections: int | None = None) -> None:
        super().__init__(engine, clock, delivery, recorded)
        # None: not known, the gathering moment always passes
        self._gather_seconds, self._connections = gather_seconds, connections
        self._gathering = False  # the write's first try waits out the gathering moment
        self._starting: list[tuple[int, int]] = []
        self._written: _Write | None = None  # the write the marks in _starting wait for
        self._scheduled = False  # some send waits for that write, and its next try is due
        self._first_try: float | None = None  # loop time of its first try
        self._retry: asyncio.Handle | None = None  # the write's next try, scheduled
        self._connection: Connection | None = None
        self._held = ExitStack()

    def data_goes_out(self, claim: ledger.Claim) -> Awaitable[None]:
        """Ask for the record that this email's data goes out; awaiting the result returns once it is written
        (left unawaited, when the server refused the envelope, the record waits for the next write)."""
        self._starting.append((claim.email_id, claim.fence))
        if self._written is None:
            self._written = _Write()
        return _Written(self, self._written)

    def needed(self) -> None:
        """A send waits for the pending write: its first try runs gather_seconds later, so that the records the
        sends on the process's other connections ask for meanwhile share it (0: on the next turn of the loop,
        once every send ready in this turn waits)."""
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            self._gathering = bool(self._gather_seconds)
            self._retry = (loop.call_later(self._gather_seconds, self._try_write) if self._gather_seconds
                           else loop.call_soon(self._try_write))

    def waiting(self, sends: int) -> None:
        """So many sends wait for the pending write: once a send on each of the process's connections does,
        none could join it any more, and its first try runs on the next turn of the loop."""
        if self._gathering and self._connections is not None and sends >= self._connections and self._retry:
            self._gathering = False
            self._retry.cancel()
            self._retry = asyncio.get_running_loop().call_soon(self._try_write)

    def close(self, *, complete: bool = True) -> None:
        """Record the outcomes not recorded yet (the batch is done) and give the connection back.

        Records asked for by sends that never reached DATA are not written: those emails have their outcome.
        """
        if self._retry is not None:  # no send waits for the write any more: the batch is over
            self._retry.cancel()
        try:
            super().close()
        finally:
            self._connection = None
            self._held.close()

    def _impatient(self) -> Connection:
        if self._connection is None:
            self._connection = self._held.enter_context(ledger.impatient_connection(self._engine))
        return self._connection

    def _try_write(self) -> None:
        self._retry, written, self._gathering = None, self._written, False
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
            written.failed = exc
        if not done:  # sends that reach their data meanwhile join this write
            self._retry = loop.call_later(BUSY_RETRY_SECONDS, self._try_write)
            return
        self._starting, self._written, self._scheduled, self._first_try = [], None, False, None
        written.landed()


class _Done:
    """An awaitable that is done already: the record is written."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


_WRITTEN = _Done()


class _Write:
    """One write of the journal as its sends see it: whether it landed, how it failed, and who waits for it.

    Each waiting send has a future of its own, woken in one pass once the write is done: a send cancelled
    meanwhile cancels only its own, and no send's wake-up goes through another callback first."""

    __slots__ = ("done", "failed", "_waiters")

    def __init__(self) -> None:
        self.done = False
        self.failed: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] = []

    def waiter(self) -> tuple[asyncio.Future[None], int]:
        """A future of the calling send's own, done once the write is, and how many sends wait with it."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter, len(self._waiters)

    def landed(self) -> None:
        """The write is done (failed holds why it failed): every send waiting for it goes on."""
        self.done, failed, waiters, self._waiters = True, self.failed, self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                if failed is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(failed)


class _Written:
    """What a send awaits before its data goes out: the write its record is in (asked for on the first await)."""

    __slots__ = ("_journal", "_written")

    def __init__(self, journal: LedgerJournal, written: _Write) -> None:
        self._journal, self._written = journal, written

    def __await__(self) -> Generator[Any, None, None]:
        written = self._written
        if not written.done:
            journal = self._journal
            journal.needed()
            waiter, sends = written.waiter()
            journal.waiting(sends)
            yield from waiter.__await__()
        elif written.failed is not None:
            raise written.failed
