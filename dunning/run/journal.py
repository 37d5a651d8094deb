"""What a delivery process writes while a batch is being sent, so that a crash leaves only what was in flight.

Before a send lets its message data go out, the ledger records that the email's data is under way;
the outcomes of sends that have finished are recorded with the same writes. The sends that reach
that point in the same turn of the event loop share one write, and the writes of a batch share one
connection. After a crash, an email whose lease
ran out is then unknown only if its data was under way and no outcome was recorded; the others go
back to the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import Connection, Engine

from dunning import ledger
from dunning.run.clock import Clock
from dunning.settings import DeliverySettings

__all__ = ["Journal"]


class Journal:
    """Marks claimed emails whose data goes out, and records finished outcomes, many in one write."""

    def __init__(self, engine: Engine, clock: Clock, delivery: DeliverySettings,
                 recorded: Callable[[ledger.RecordCounts], None]) -> None:
        self._engine, self._clock, self._delivery, self._recorded = engine, clock, delivery, recorded
        self._starting: list[tuple[int, int]] = []
        self._finished: list[ledger.Result] = []
        self._written: asyncio.Future[None] | None = None
        self._connection: Connection | None = None

    async def data_goes_out(self, claim: ledger.Claim) -> None:
        """Return once the ledger records that this email's data goes out now."""
        self._starting.append((claim.email_id, claim.fence))
        written = self._written
        if written is None:
            loop = asyncio.get_running_loop()
            written = self._written = loop.create_future()
            loop.call_soon(self._write)  # once every send ready in this turn has joined
        await asyncio.shield(written)

    def finished(self, result: ledger.Result) -> None:
        """An outcome to record with the next write (or by flush)."""
        self._finished.append(result)

    def flush(self, starting: list[tuple[int, int]] | None = None) -> None:
        """Record the outcomes not recorded yet (the batch is done), and mark `starting`, in one write."""
        finished, self._finished = self._finished, []
        if finished or starting:
            if self._connection is None:
                self._connection = self._engine.connect()
            counts = ledger.record(self._connection, finished, now=self._clock.now(),
                                   max_attempts=self._delivery.max_attempts,
                                   backoff_seconds=self._delivery.retry_backoff_seconds, in_flight=starting or ())
            if finished:
                self._recorded(counts)

    def close(self) -> None:
        """Record what is left (flush) and give the connection back."""
        try:
            self.flush()
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _write(self) -> None:
        starting, written = self._starting, self._written
        self._starting, self._written = [], None
        assert written is not None
        try:
            self.flush(starting)
        except Exception as exc:  # every send waiting on this write stops with it
            written.set_exception(exc)
        else:
            written.set_result(None)
