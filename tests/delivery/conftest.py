"""Fixtures for the delivery tests: real aiosmtpd servers on 127.0.0.1, a trustme CA, sample emails.

Async code is driven with asyncio.run inside plain tests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme

from dunning.delivery.capture import CaptureServer
from dunning.settings import SmtpSettings


@dataclass(frozen=True)
class Email:
    """The four fields build_message reads from a rendered email."""

    subject: str
    html: str
    text: str
    lang: str = "en"


SENT_AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def email() -> Email:
    return Email(subject="Your card payment failed",
                 html='<!doctype html><html lang="en"><body><p>Hello &amp; welcome</p></body></html>\n',
                 text="Hello,\nyour payment failed.\n")


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def capture(request: pytest.FixtureRequest) -> Iterator[CaptureServer]:
    """A capture server; every test using it runs against one that pipelines and one that does not."""
    with CaptureServer(pipelining=request.param) as server:
        yield server


@pytest.fixture
def smtp_settings(capture: CaptureServer) -> Callable[..., SmtpSettings]:
    """SmtpSettings pointing at the capture server, with short timeouts and no outage ridden out (its tests
    inject their clock); keywords override."""
    def make(**overrides: Any) -> SmtpSettings:
        values: dict[str, Any] = dict(host="127.0.0.1", port=capture.port, connect_timeout=2.0,
                                      command_timeout=2.0, data_timeout=2.0, concurrency=2, reconnect_seconds=0)
        values.update(overrides)
        return SmtpSettings(**values)
    return make


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_email() -> type[Email]:
    return Email


@dataclass(frozen=True)
class Tls:
    """A private CA the client trusts (ca_file) and server contexts with good and bad certificates."""

    ca_file: Path
    good: ssl.SSLContext          # issued by the CA for 127.0.0.1
    wrong_host: ssl.SSLContext    # issued by the CA for mail.example.org only
    untrusted: ssl.SSLContext     # issued by a CA the client does not know (self-signed chain)


def _server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca, stranger = trustme.CA(), trustme.CA()
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(ca_file=ca_file,
               good=_server_context(ca.issue_cert("127.0.0.1", "localhost")),
               wrong_host=_server_context(ca.issue_cert("mail.example.org")),
               untrusted=_server_context(stranger.issue_cert("127.0.0.1")))


class ManualCall:
    """A call ManualTimers makes once time reaches `when`, unless cancelled."""

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self._when, self._callback, self.cancelled = when, callback, False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self.cancelled = True

    def run(self) -> None:
        if not self.cancelled:
            self._callback()


class ManualTimers:
    """The transport's clock (dunning.delivery.timer.Timers) moved by the test: a timeout passes when the
    test says so, never by waiting. Timers that come due run in the event loop's next turn, in order."""

    def __init__(self) -> None:
        self.now = 0.0
        self._due: list[tuple[float, int, ManualCall]] = []
        self._order = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the latest call_at

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> ManualCall:
        self._loop = asyncio.get_running_loop()
        call = ManualCall(when, callback)
        heapq.heappush(self._due, (when, next(self._order), call))
        return call

    def advance(self, seconds: float) -> None:
        """Move time on by `seconds`; the timers now due run as soon as the caller yields to the loop."""
        self.now += seconds
        loop = asyncio.get_running_loop()
        while self._due and self._due[0][0] <= self.now:
            loop.call_soon(heapq.heappop(self._due)[2].run)

    def advance_once(self, event: threading.Event, seconds: float) -> threading.Thread:
        """A started thread that calls advance(seconds) once event is set (by a server holding a reply while
        the test runs the client): time moves in the loop's next turn, never while a step of it reads time."""
        def when_set() -> None:
            if event.wait(30):
                assert self._loop is not None, "nothing was scheduled on these timers yet"
                self._loop.call_soon_threadsafe(self.advance, seconds)
        thread = threading.Thread(target=when_set, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def timers() -> ManualTimers:
    """A clock for the transport's timeouts that only the test moves."""
    return ManualTimers()
