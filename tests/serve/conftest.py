"""Fixtures for `dunning serve`: its app on a free loopback port, in a thread, on a clock the test moves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import uvicorn

from dunning.serve.app import build_app
from dunning.settings import Settings


@dataclass
class MovableClock:
    """The server's clock: a moment the test sets (at first the machine's: a run signs its links with it)."""

    moment: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.moment

    async def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class RunningServer:
    url: str
    clock: MovableClock


@contextmanager
def serve(settings: Settings) -> Iterator[RunningServer]:
    """`dunning serve`'s app under uvicorn on 127.0.0.1 and a free port, until the test ends."""
    clock = MovableClock()
    config = uvicorn.Config(build_app(settings, clock=clock), host="127.0.0.1", port=0, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(f"http://127.0.0.1:{port}{settings.serve.prefix}", clock)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
