"""A TCP server on loopback, on an event loop of its own in a thread: what the fault tests' servers share."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from typing import TypeVar

__all__ = ["Listener"]

L = TypeVar("L", bound="Listener")


class Listener(ABC):
    """Listens on 127.0.0.1 (a free port, in `port` once entered); each connection goes to `_session`. On exit,
    the sessions still open are ended."""

    port: int = 0

    def __enter__(self: L) -> L:
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self._thread.start()
        assert started.wait(5), f"{type(self).__name__} did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @abstractmethod
    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection."""

    async def _stop(self) -> None:
        """Close the listener and end every session still open (a late reply, a silent one)."""
        self._server.close()
        sessions = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()
