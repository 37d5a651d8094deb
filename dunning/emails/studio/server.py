"""Run the studio with uvicorn: in the foreground for the command, in a thread for tests and benchmarks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import uvicorn

from dunning.delivery.transport import is_loopback
from dunning.emails.studio.app import create_app
from dunning.errors import StudioUnavailable
from dunning.settings import Settings

__all__ = ["StudioUnavailable", "allowed_hosts", "StudioServer"]


def allowed_hosts(host: str) -> list[str]:
    """Host header values the studio answers: the loopback names, plus the address it was told to listen on."""
    names = ["127.0.0.1", "localhost", "[::1]"]
    return names if is_loopback(host) else [*names, host]


class StudioServer:
    """uvicorn serving the studio on host:port (port 0: a free one, known after start)."""

    def __init__(self, settings: Settings, *, host: str = "127.0.0.1", port: int = 8040,
                 settings_file: Path | None = None) -> None:
        self.host, self.port = host, port
        app = create_app(settings, hosts=allowed_hosts(host), settings_file=settings_file)
        # Open pages hold an event stream: shutting down waits a moment for them, then closes them.
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1,
                                lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The studio's address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve in the foreground until Ctrl+C or SIGTERM."""
        self._server.run()
        if not self._server.started:
            raise StudioUnavailable(f"cannot listen on {self.host}:{self.port} (see the message above)")

    def __enter__(self) -> StudioServer:
        self._thread = threading.Thread(target=self._server.run, name="studio", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise StudioUnavailable(f"the studio did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
