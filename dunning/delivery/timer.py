"""Per-reply timeouts for the SMTP transport, which waits for four replies per message, without
scheduling a timer per reply."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiosmtplib import SMTPReadTimeoutError, SMTPResponse

if TYPE_CHECKING:
    from dunning.delivery.replies import Replies

__all__ = ["ReplyTimer"]


class ReplyTimer:
    """Times out the reply a send awaits, with one timer per connection that is re-armed lazily.

    asyncio.wait_for (which aiosmtplib uses per command) and asyncio.timeout schedule and cancel a
    timer for every reply, though replies come long before their timeout. Here a wait only records
    its deadline; the timer, when it fires, cancels the waiting task if that deadline has passed,
    or else moves itself to the deadline of the wait in progress, if any.
    """

    __slots__ = ("_loop", "_handle", "_due", "_task", "_cancelling", "_expired")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self._due: float | None = None  # the deadline of the wait in progress
        self._task: asyncio.Task | None = None
        self._cancelling = 0
        self._expired = False

    async def reply(self, replies: Replies, seconds: float) -> SMTPResponse:
        """The server's next reply; SMTPReadTimeoutError when it takes longer than `seconds`."""
        due = self._loop.time() + seconds
        handle = self._handle
        if handle is None or handle.when() > due:
            if handle is not None:
                handle.cancel()
            self._handle = self._loop.call_at(due, self._fire)
        task = self._task = asyncio.current_task()
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
        if self._loop.time() < self._due:
            self._handle = self._loop.call_at(self._due, self._fire)
            return
        self._expired = True
        self._task.cancel()

    def stop(self) -> None:
        """Cancel the timer (the connection is closed; the next wait arms it again)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
