"""The clock a run reads and waits on: passed in, so that tests move time instead of sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SystemClock", "ShiftedClock", "SYSTEM_CLOCK"]


class Clock(Protocol):
    """Where a run gets the current moment and how it waits."""

    def now(self) -> datetime:
        """The current moment, aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this long (a heartbeat, an idle poll)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """The current moment, aware, in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait on the event loop."""
        await asyncio.sleep(seconds)


class ShiftedClock(SystemClock):
    """The machine's clock moved by an offset that `advance` adds to: leases expire and retries come due
    at once, while waits on the event loop stay real (and short)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        """The machine's moment plus the offset."""
        return super().now() + self.offset

    def advance(self, seconds: float) -> None:
        """Move this clock forward, as if that much time had passed."""
        self.offset += timedelta(seconds=seconds)


SYSTEM_CLOCK = SystemClock()
