"""Riding out a relay that is gone: jittered, growing waits between connection attempts, for a bounded time.

An outage begins with a connection failure and ends with the next MAIL a server accepts. While it
lasts less than `smtp.reconnect_seconds`, each failed attempt waits before the next one: twice as
long each time, up to a ceiling, with a random share taken off so that many deliverers do not come
back in step. No wait goes past the outage's allowance; once it is spent, the transport gives up.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

__all__ = ["FIRST_WAIT", "LONGEST_WAIT", "Outage", "next_wait"]

FIRST_WAIT = 0.1
LONGEST_WAIT = 5.0

log = logging.getLogger("dunning.delivery")


def next_wait(failures: int, draw: Callable[[], float] = random.random) -> float:
    """Seconds to wait after `failures` failures in a row: FIRST_WAIT doubled each time up to LONGEST_WAIT,
    of which a random half at most is taken off (draw() is in [0, 1))."""
    ceiling = min(LONGEST_WAIT, FIRST_WAIT * 2.0 ** min(max(failures, 1) - 1, 32))
    return ceiling * (1 - draw() / 2)


class Outage:
    """The relay's outage in progress, if any: when it began, how many attempts failed, and the waits."""

    def __init__(self, allowance: float, *, where: str = "the SMTP server",
                 now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_wait: Callable[[float], None] | None = None,
                 draw: Callable[[], float] = random.random) -> None:
        self.allowance, self.where = allowance, where
        self._now, self._sleep, self._on_wait, self._draw = now, sleep, on_wait, draw
        self.began: float | None = None
        self.failures = 0

    def failed(self) -> None:
        """Count a failed attempt; the first one begins the outage."""
        if self.began is None:
            self.began = self._now()
        self.failures += 1

    def ended(self) -> None:
        """The server answers again: the next failure begins a new outage."""
        self.began, self.failures = None, 0

    def lasted(self) -> float:
        """Seconds since the outage began (0 when there is none)."""
        return 0.0 if self.began is None else self._now() - self.began

    def riding_out(self) -> bool:
        """Whether the outage is still within its allowance: keep trying."""
        return self.began is not None and self.lasted() < self.allowance

    async def wait(self) -> None:
        """Wait before the next attempt, never past the allowance; say so in the logs."""
        seconds = min(next_wait(self.failures, self._draw), max(0.0, self.allowance - self.lasted()))
        if seconds <= 0:
            return
        log.warning("SMTP server %s unreachable for %.1f s (%d failures in a row): next attempt in %.2f s",
                    self.where, self.lasted(), self.failures, seconds,
                    extra={"event": "smtp_reconnect_wait", "wait_seconds": round(seconds, 3),
                           "outage_seconds": round(self.lasted(), 3), "count": self.failures})
        if self._on_wait is not None:
            self._on_wait(seconds)
        await self._sleep(seconds)
