"""A capture SMTP server for tests and local runs: real aiosmtpd on loopback, with injectable faults.

    with CaptureServer(outbox=tmp_path) as server:          # port=0 picks a free port
        ...deliver to 127.0.0.1:server.port...
        assert server.messages[0].recipients == ("a@example.com",)
        assert server.messages[0].parsed()["Subject"] == "..."

Every message received is kept in memory (envelope sender, recipients, bytes) and, when an outbox
directory is given, written there as a .eml file (timestamp + Message-ID hash; temp file + rename).
`commands` records every command the server saw, `connections` counts sessions. Faults make the
server misbehave on purpose, e.g. `Fault("rcpt", 550)`, `Fault("mail", drop=True)`,
`Fault("data", delay=2.0)` (a slow final reply), `Fault("rcpt", 250, delay=0.5)` (a slow acceptance),
`Fault("connect", 421, times=None)` (always), `Fault("mail", 250, held=True)` (no reply until the test
calls `fault.release()`; `fault.reached` is set once the server got the command). The server announces
PIPELINING and 8BITMIME unless told not to (`pipelining=False`, `eight_bit=False`; without 8BITMIME it
refuses BODY=8BITMIME).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import ssl
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from dunning.delivery.transport import is_loopback

__all__ = ["Stage", "Fault", "CapturedMessage", "CaptureServer", "inject"]

Stage = Literal["connect", "mail", "rcpt", "data"]
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S[^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_DROP_WAIT = 30.0  # a dropped session waits to be cancelled by connection_lost
_HOLD_POLL = 0.005  # how often a held reply looks whether the test released it (another thread)


@dataclass
class Fault:
    """One injected failure: at `stage`, reply `code` (421 also closes the session), or drop the
    connection without a reply (`drop`), after waiting `delay` seconds (and, when `held`, until
    release() is called; `reached` is set as the fault is applied); a 2xx/3xx code at "mail" or
    "rcpt" accepts as usual, only late. "data" is the reply to the message itself (after the final
    dot); a message refused there (4xx/5xx) is not captured, one whose reply is lost or late is, as
    a real server may hold it. `times` faults fire before it is spent (None: every time);
    `recipient` limits an RCPT fault to one address."""

    stage: Stage
    code: int | None = None
    text: str = ""
    drop: bool = False
    delay: float = 0.0
    times: int | None = 1
    recipient: str | None = None
    held: bool = False
    reached: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    released: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def release(self) -> None:
        """Let a held fault's reply go."""
        self.released.set()

    def reply(self) -> str:
        return f"{self.code} {self.text or _DEFAULT_TEXT.get(self.code or 0, 'Injected failure')}"

    @property
    def accepts(self) -> bool:
        """Whether the command still succeeds (a late 2xx/3xx reply)."""
        return not self.drop and self.code is not None and self.code < 400


_DEFAULT_TEXT = {421: "4.3.2 Service not available, closing channel", 451: "4.3.0 Local error",
                 550: "5.1.1 Mailbox unavailable", 554: "5.6.0 Transaction failed"}


@dataclass(frozen=True)
class CapturedMessage:
    """A message as the server received it: envelope and raw bytes (and its .eml file, if written)."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    path: Path | None = None
    mail_options: tuple[str, ...] = ()  # MAIL FROM parameters, e.g. ("SIZE=123", "BODY=8BITMIME")
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def parsed(self) -> EmailMessage:
        """The message parsed with the modern email policy."""
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)  # policy.default builds EmailMessage objects
        return parsed


class CaptureServer:
    """An SMTP server on loopback that stores what it receives; a context manager."""

    def __init__(self, outbox: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 faults: Iterable[Fault] = (), starttls: ssl.SSLContext | None = None,
                 implicit_tls: ssl.SSLContext | None = None, credentials: tuple[str, str] | None = None,
                 keep: bool = True, on_message: Callable[[CapturedMessage], None] | None = None,
                 pipelining: bool = True, eight_bit: bool = True) -> None:
        if not is_loopback(host):
            raise ValueError(f"the capture server listens on loopback only, not {host}")
        if starttls and implicit_tls:
            raise ValueError("starttls and implicit_tls are exclusive")
        self.host, self.port = host, port
        self.outbox = Path(outbox) if outbox is not None else None
        self.messages: list[CapturedMessage] = []
        self.commands: list[tuple[int, str, str]] = []  # (session number, command, argument)
        self.connections = 0
        self.keep, self.on_message = keep, on_message
        self.pipelining, self.eight_bit = pipelining, eight_bit
        self._faults = list(faults)
        self._lock = threading.Condition()
        self._armed = False
        self._credentials = credentials
        smtp_kwargs: dict[str, Any] = {"server_hostname": "capture.localhost", "ident": "dunning capture"}
        if starttls:
            smtp_kwargs.update(tls_context=starttls)
        if credentials:
            smtp_kwargs.update(authenticator=self._authenticate, auth_required=True,
                               auth_require_tls=bool(starttls or implicit_tls))
        self._controller = _Controller(self, host, port, implicit_tls, smtp_kwargs)

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> CaptureServer:
        """Listen (on a free port when port=0) and return self."""
        if self.outbox is not None:
            self.outbox.mkdir(parents=True, exist_ok=True)
        self._controller.start()
        self.port = self._controller.port
        self._armed = True  # the controller's own start-up probe is neither counted nor faulted
        return self

    def stop(self) -> None:
        """Stop listening and close every session (nothing when it is not listening)."""
        if not self._armed:
            return
        self._armed = False
        self._controller.stop()

    def add_fault(self, fault: Fault) -> None:
        """Inject one more failure."""
        with self._lock:
            self._faults.append(fault)

    def remove_fault(self, fault: Fault) -> None:
        """Take back a fault not yet spent (one that fires every time, say); nothing if it is gone."""
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        """Forget received messages, commands, connection count and faults."""
        with self._lock:
            self.messages.clear()
            self.commands.clear()
            self._faults.clear()
            self.connections = 0

    def wait_for(self, count: int, timeout: float = 5.0) -> list[CapturedMessage]:
        """Wait until `count` messages arrived; TimeoutError otherwise."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{len(self.messages)} of {count} messages arrived in {timeout} s")
            return list(self.messages)

    def count(self, command: str) -> int:
        """How many times the server saw a command, e.g. count("MAIL")."""
        return sum(1 for _, name, _ in self.commands if name == command)

    # --- called from the server thread ---

    def _record(self, session: int, command: str, argument: str = "") -> None:
        with self._lock:
            self.commands.append((session, command, argument))

    def _take_fault(self, stage: str, recipient: str | None = None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.stage == stage and fault.recipient in (None, recipient):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _store(self, sender: str, recipients: list[str], data: bytes, options: list[str]) -> None:
        path = self._write(data) if self.outbox is not None else None
        message = CapturedMessage(sender, tuple(recipients), data, path, tuple(options))
        with self._lock:
            if self.keep:
                self.messages.append(message)
            self._lock.notify_all()
        if self.on_message is not None:
            self.on_message(message)

    def _write(self, data: bytes) -> Path:
        assert self.outbox is not None
        end = data.find(b"\r\n\r\n")
        match = _MESSAGE_ID.search(data, 0, len(data) if end < 0 else end + 2)
        digest = hashlib.sha256(match.group(1).strip() if match else data).hexdigest()[:16]
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{digest}.eml"
        fd, temp = tempfile.mkstemp(dir=self.outbox, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        target = self.outbox / name
        os.replace(temp, target)
        return target

    def _authenticate(self, server: _Session, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: object) -> AuthResult:
        given = ((auth_data.login.decode(), auth_data.password.decode())
                 if isinstance(auth_data, LoginPassword) else None)
        ok = given is not None and given == self._credentials
        self._record(server.number, "AUTH", given[0] if given is not None and ok else "")
        return AuthResult(success=ok, handled=False)


class _Session(SMTP):
    """aiosmtpd's SMTP with session numbers, connect-time faults and injected replies."""

    def __init__(self, capture: CaptureServer, **kwargs: Any) -> None:
        super().__init__(_Handler(capture), **kwargs)
        self.capture = capture
        self.number = 0  # the session's number, 1 for the first counted connection

    async def _handle_client(self) -> None:
        capture = self.capture
        if not capture._armed:
            return await super()._handle_client()
        with capture._lock:
            capture.connections += 1
            self.number = capture.connections
        capture._record(self.number, "CONNECT")
        fault = capture._take_fault("connect")
        if fault is None:
            return await super()._handle_client()
        await inject(self, fault)


async def inject(server: SMTP, fault: Fault) -> str:
    """Apply a fault in a session: wait, then reply (closing after 421) or drop without a reply."""
    fault.reached.set()
    if fault.delay:
        await asyncio.sleep(fault.delay)
    while fault.held and not fault.released.is_set():
        await asyncio.sleep(_HOLD_POLL)
    assert server.transport is not None
    if fault.drop or fault.code is None:
        server.transport.close()
        await asyncio.sleep(_DROP_WAIT)  # connection_lost cancels the session meanwhile
    if fault.code == 421 or fault.stage == "connect":
        server.loop.call_soon(server.transport.close)  # runs after the reply below is written
    if fault.stage == "connect":
        await server.push(fault.reply())
    return fault.reply()


class _Handler:
    """aiosmtpd hooks: record each command, apply faults, capture messages."""

    def __init__(self, capture: CaptureServer) -> None:
        self.capture = capture

    def _record(self, server: _Session, command: str, argument: str = "") -> None:
        self.capture._record(server.number, command, argument)

    async def handle_EHLO(self, server: _Session, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        self._record(server, "EHLO", hostname)
        session.host_name = hostname
        if not self.capture.eight_bit:
            responses = [line for line in responses if line[4:].upper() != "8BITMIME"]
        if self.capture.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_HELO(self, server: _Session, session: Session, envelope: Envelope, hostname: str) -> str:
        self._record(server, "HELO", hostname)
        session.host_name = hostname
        return f"250 {server.hostname}"

    def handle_STARTTLS(self, server: _Session, session: Session, envelope: Envelope) -> bool:
        self._record(server, "STARTTLS")
        return True

    async def handle_MAIL(self, server: _Session, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        self._record(server, "MAIL", address)
        if not self.capture.eight_bit and any(o.upper() == "BODY=8BITMIME" for o in options):
            return "555 5.5.4 BODY=8BITMIME not supported"
        fault = self.capture._take_fault("mail")
        reply = await inject(server, fault) if fault is not None else "250 OK"
        if fault is None or fault.accepts:
            envelope.mail_from, envelope.mail_options = address, list(options)
        return reply

    async def handle_RCPT(self, server: _Session, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        self._record(server, "RCPT", address)
        fault = self.capture._take_fault("rcpt", address)
        reply = await inject(server, fault) if fault is not None else "250 OK"
        if fault is None or fault.accepts:
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: _Session, session: Session, envelope: Envelope) -> str:
        self._record(server, "DATA")
        assert envelope.mail_from is not None and envelope.original_content is not None  # DATA follows MAIL
        fault = self.capture._take_fault("data")
        # A 4xx/5xx final reply refuses the message; a lost or late reply may leave it delivered.
        if fault is None or fault.drop or not fault.code or fault.code < 400:
            self.capture._store(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                                envelope.mail_options)
        if fault is not None:
            return await inject(server, fault)
        return "250 2.0.0 OK: captured"

    async def handle_RSET(self, server: _Session, session: Session, envelope: Envelope) -> str:
        self._record(server, "RSET")
        return "250 OK"

    async def handle_NOOP(self, server: _Session, session: Session, envelope: Envelope, argument: str) -> str:
        self._record(server, "NOOP")
        return "250 OK"

    async def handle_QUIT(self, server: _Session, session: Session, envelope: Envelope) -> str:
        self._record(server, "QUIT")
        return "221 Bye"


class _Controller(Controller):
    """aiosmtpd's threaded Controller, able to listen on port 0 (it learns the port after binding)."""

    def __init__(self, capture: CaptureServer, host: str, port: int,
                 implicit_tls: ssl.SSLContext | None, smtp_kwargs: dict[str, Any]) -> None:
        super().__init__(None, hostname=host, port=port, ssl_context=implicit_tls, **smtp_kwargs)
        self.capture = capture

    def factory(self) -> SMTP:
        return _Session(self.capture, **self.SMTP_kwargs)

    def _create_server(self) -> Coroutine[Any, Any, asyncio.Server]:
        creating = super()._create_server()

        async def bind() -> asyncio.Server:
            server = await creating
            assert isinstance(server, asyncio.Server)
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()
