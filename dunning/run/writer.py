"""How a delivery process's sends wait for its ledger writes (see journal): what a send awaits before its data
goes out, and a thread of their own where the writes wait for the database server while the sends go on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

__all__ = ["Writer", "Written", "WRITTEN"]

T = TypeVar("T")


class Writer(Generic[T]):
    """Runs calls on a thread of its own, one after the other: each one's landing (a callback given with
    it) runs on the event loop once it returned, or at once in wait(), which blocks until then."""

    def __init__(self) -> None:
        self._thread: ThreadPoolExecutor | None = None  # started with the first call
        self._flying: Future[T] | None = None
        self._landing: Callable[[Future[T]], None] | None = None
        self.spent = 0.0  # CPU seconds of the call that landed last, by its thread's clock

    @property
    def busy(self) -> bool:
        """A call is on its way and has not landed yet."""
        return self._flying is not None

    def start(self, call: Callable[[], T], landing: Callable[[Future[T]], None]) -> None:
        """Run call on the thread, then landing(its future) on the running event loop; none may be busy."""
        assert self._flying is None, "one call at a time"
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dunning-ledger")
        self._flying, self._landing = self._thread.submit(self._timed, call), landing
        self._flying.add_done_callback(lambda flying: loop.call_soon_threadsafe(self._land, flying))

    def wait(self) -> None:
        """Block until the call on its way has returned, and land it here (the event loop's turn finds it
        landed)."""
        if self._flying is not None:
            wait([self._flying])
            self._land(self._flying)

    def close(self) -> None:
        """Land the call on its way, then end the thread."""
        try:
            self.wait()
        finally:
            if self._thread is not None:
                self._thread.shutdown()
                self._thread = None

    def _timed(self, call: Callable[[], T]) -> T:
        started = time.thread_time()
        try:
            return call()
        finally:
            self.spent = time.thread_time() - started

    def _land(self, flying: Future[T]) -> None:
        if flying is not self._flying:  # landed already, by wait()
            return
        landing = self._landing
        assert landing is not None
        self._flying = self._landing = None
        landing(flying)


class _Done:
    """An awaitable that is done already: the record is written."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


WRITTEN = _Done()


class Written:
    """What a send awaits before its data goes out: the write its record is in (asked for on the first await)."""

    __slots__ = ("_needed", "_written")

    def __init__(self, needed: Callable[[asyncio.Future[None]], None], written: asyncio.Future[None]) -> None:
        self._needed, self._written = needed, written

    def __await__(self) -> Generator[Any, None, None]:
        if not self._written.done():
            self._needed(self._written)
        return asyncio.shield(self._written).__await__()
