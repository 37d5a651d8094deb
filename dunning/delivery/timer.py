"""Per-reply timeouts for the SMTP transport, which waits for four replies per message, without
scheduling a timer per reply; and Timers, the clock they run on (the event loop's, or a test's)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiosmtplib import SMTPReadTimeoutError, SMTPResponse

if TYPE_CHECKING:
    from dunning.delivery.replies import Replies

_T = TypeVar("_T")

__all__ = ["Timer", "Timers", "armed", "ReplyTimer", "GiveUpTimer"]


class Timer(Protocol):
    """A scheduled call (asyncio.TimerHandle is one)."""

    def when(self) -> float:
        """The moment it is due, on its Timers' time."""
        ...

    def cancel(self) -> None:
        """Do not make the call."""
        ...


class Timers(Protocol):
    """The time the transport reads and where it schedules its timeouts: the running event loop is one;
    tests pass a clock they move themselves, so that no test waits for a timeout to pass."""

    def time(self) -> float:
        """The current moment, in seconds (monotonic)."""
        ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer:
        """Call callback in the event loop once time() reaches when."""
        ...


def armed(timers: Timers, handle: Timer | None, due: float, fire: Callable[[], object]) -> Timer:
    """The timer to keep for a wait until `due`: the one scheduled already unless it comes too late (a timer
    that comes early moves itself on when it fires)."""
    if handle is not None and handle.when() <= due:
        return handle
    if handle is not None:
        handle.cancel()
    return timers.call_at(due, fire)


class ReplyTimer:
    """Times out the reply a send awaits, with one timer per connection that is re-armed lazily.

    asyncio.wait_for (which aiosmtplib uses per command) and asyncio.timeout schedule and cancel a
    timer for every reply, though replies come long before their timeout. Here a wait only records
    its deadline; the timer, when it fires, cancels the waiting task if that deadline has passed,
    or else moves itself to the deadline of the wait in progress, if any.
    """

    __slots__ = ("_timers", "_handle", "_due", "_task", "_cancelling", "_expired", "_loop")

    def __init__(self, timers: Timers) -> None:
        self._timers = timers
        self._handle: Timer | None = None
        self._due: float | None = None  # the deadline of the wait in progress
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._expired = False
        self._loop: asyncio.AbstractEventLoop | None = None  # asked for once: each asking costs a system call

    async def reply(self, replies: Replies, seconds: float) -> SMTPResponse:
        """The server's next reply; SMTPReadTimeoutError when it takes longer than `seconds`."""
        due = self._timers.time() + seconds
        self._handle = armed(self._timers, self._handle, due, self._fire)
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = self._task = asyncio.current_task(loop)
        assert task is not None
        self._cancelling, self._due = task.cancelling(), due
        try:
            return await replies.read_response()
        except asyncio.CancelledError:
            # Ours only if no one else asked to cancel the task meanwhile (as asyncio.timeout does).
            if self._expired and task.uncancel() <= self._cancelling:
                raise SMTPReadTimeoutError("Timed out waiting for server response") from None
            raise
        finally:
            self._due = self._task = None
            self._expired = False

    def _fire(self) -> None:
        self._handle = None
        if self._due is None or self._task is None:
            return  # nothing waits: the next wait arms the timer again
        if self._timers.time() < self._due:
            self._handle = self._timers.call_at(self._due, self._fire)
            return
        self._expired = True
        self._task.cancel()

    def stop(self) -> None:
        """Cancel the timer (the connection is closed; the next wait arms it again)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class GiveUpTimer:
    """Ends a wait for a future after `seconds` by giving it a default result, with one timer re-armed lazily
    (as ReplyTimer does) instead of a timer scheduled and cancelled for every wait; one wait at a time."""

    __slots__ = ("_timers", "_handle", "_due", "_future", "_default")

    def __init__(self, timers: Timers) -> None:
        self._timers = timers
        self._handle: Timer | None = None
        self._due: float | None = None
        self._future: asyncio.Future[Any] | None = None
        self._default: object = None

    async def wait(self, future: asyncio.Future[_T], seconds: float, default: _T) -> _T:
        """The future's result, or default once `seconds` have passed (a cancelled wait cancels the future)."""
        if not future.done():
            due = self._timers.time() + seconds
            self._handle = armed(self._timers, self._handle, due, self._fire)
            self._future, self._due, self._default = future, due, default
            try:
                await future
            finally:
                self._future = self._due = None
        return future.result()

    def _fire(self) -> None:
        self._handle = None
        future, due = self._future, self._due
        if future is None or due is None:
            return  # nothing waits: the next wait arms the timer again
        if self._timers.time() < due:
            self._handle = self._timers.call_at(due, self._fire)
        elif not future.done():
            future.set_result(self._default)
