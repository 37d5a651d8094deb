"""The lease a delivery process holds on its claimed batch, judged by its own monotonic clock.

The ledger fences outcomes (a late outcome of a row claimed again is not written); this fences the wire.
A batch's lease runs from the moment just before its claim (or its latest extension) was written, so the
process's deadline is never later than the one the database holds. Before an email's message data goes
out, its mark of being under way is written (flight log or ledger) and then the deadline is checked: a
process that stalled (SIGSTOP, a paused machine, a long collection) past it sends nothing more, since
another process may have taken its claims over. The mark comes first so that a stall between the check
and the data leaves the email unknown to whoever takes it over, never sent again.

The margin covers the difference between the wall clocks of the process that wrote the lease and the
one that finds it expired, and the time from the check to the data's first byte on the wire.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from dunning.errors import LeaseLost

__all__ = ["Lease", "MARGIN_SHARE", "Fenced"]

MARGIN_SHARE = 0.25  # of delivery.lease_seconds, kept back from the deadline


class Lease:
    """Until when this process may start sending a batch's emails; lost once another may hold them."""

    def __init__(self, lease_seconds: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self._monotonic = lease_seconds, monotonic
        self.deadline = float("-inf")
        self.lost: str | None = None

    def started(self) -> float:
        """The moment, by this process's clock, at which a claim or an extension is about to be written."""
        return self._monotonic()

    def renewed(self, started: float) -> None:
        """The claim or extension written at `started` holds every email still to be sent."""
        if self.lost is None:
            self.deadline = started + self.seconds * (1 - MARGIN_SHARE)

    def lose(self, reason: str) -> None:
        """Another process may hold these emails now: none of them may go out any more."""
        self.lost = self.lost or reason

    def check(self) -> None:
        """Raise LeaseLost unless the lease is still held with its margin."""
        if self.lost is None and self._monotonic() > self.deadline:
            self.lose(f"the batch's lease of {self.seconds:g} s ran out before an email's data went out "
                      "(the process stalled or was too slow to renew it)")
        if self.lost is not None:
            raise LeaseLost(f"lease lost: {self.lost}")


class Fenced:
    """What a send awaits once the server opened DATA: the email's mark written, then the lease checked."""

    __slots__ = ("_lease", "_marked")

    def __init__(self, lease: Lease, marked: Awaitable[None] | None) -> None:
        self._lease, self._marked = lease, marked

    def __await__(self) -> Generator[Any, None, None]:
        if self._marked is not None:
            yield from self._marked.__await__()
        self._lease.check()
