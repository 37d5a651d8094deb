"""The connection pool: idle connections handed straight to the sends waiting for one."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

__all__ = ["T", "Pool"]

if TYPE_CHECKING:
    pass

T = TypeVar("T")


class Pool(Generic[T]):
    """Idle items (connections), most recently used first, and the tasks waiting for one, in order.

    A released item goes straight to the longest-waiting task (asyncio.Queue would store it, wake
    the task, and let it take the item back out).
    """

    __slots__ = ("_loop", "_idle", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, items: list[T]) -> None:
        self._loop = loop
        self._idle = list(reversed(items))
        self._waiters: deque[asyncio.Future[T]] = deque()

    async def get(self) -> T:
        """An idle item, or the next one released once the tasks that asked before got theirs."""
        if self._idle:  # then no task is waiting: put() serves waiters first
            return self._idle.pop()
        waiter: asyncio.Future[T] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.put(waiter.result())  # handed over as the waiter was cancelled: pass it on
            raise

    @property
    def waiting(self) -> bool:
        """Whether a task is waiting for an item (a cancelled task's waiter is done, and not counted)."""
        waiters = self._waiters
        while waiters and waiters[0].done():  # put() would skip these anyway
            waiters.popleft()
        return bool(waiters)  # the first one is not done

    def put(self, item: T) -> None:
        """Release an item: to the longest-waiting task, else back to the idle ones."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled task's waiter is done: skip it
                waiter.set_result(item)
                return
        self._idle.append(item)
