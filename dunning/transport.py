"""SMTP delivery over aiosmtplib: a pool of reused connections, TLS that fails closed, clear outcomes.

Outcomes: "sent" (250 to the final dot), "retry" (4xx, or the connection lost before the message was
handed over), "failed" (5xx), "unknown" (the server may hold the message: the final reply was lost or
late). The transport never retries a message itself once MAIL was accepted; it only reconnects and
starts again while nothing was handed over yet.

A transaction writes its commands straight to aiosmtplib's protocol and reads each reply without a
per-command timer (see dunning.waiting): the addresses were validated by envelope_address, and the
pool hands each connection to one send at a time, which is what aiosmtplib's per-command checks,
lock and asyncio.wait_for would otherwise pay for on every command.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import aiosmtplib
from aiosmtplib import (SMTPAuthenticationError, SMTPConnectResponseError, SMTPException,
                        SMTPResponseException, SMTPServerDisconnected, SMTPTimeoutError)
from aiosmtplib.protocol import SMTPProtocol

from dunning.errors import DeliveryError, SettingsError
from dunning.message import CrlfBytes, DotSafeBytes, MessageError, envelope_address
from dunning.settings import SmtpSettings
from dunning.waiting import Pool, ReplyTimer

log = logging.getLogger(__name__)

Status = Literal["sent", "retry", "failed", "unknown"]
ATTEMPTS_PER_SEND = 3  # connection attempts one send makes before it reports "retry"
_LOST = (SMTPServerDisconnected, SMTPTimeoutError, ConnectionError, OSError)
_BROKEN = (SMTPException, *_LOST)  # lost, timed out, or a reply that cannot be parsed


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message: status, the server's code and reply, recipients refused at RCPT."""

    status: Status
    code: int | None
    reply: str
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)


def by_code(code: int, reply: str, refused: dict[str, tuple[int, str]] | None = None) -> Outcome:
    """The outcome of a final SMTP reply: 2xx sent, 4xx retry, anything else failed."""
    status: Status = "sent" if 200 <= code < 300 else "retry" if 400 <= code < 500 else "failed"
    return Outcome(status, code, reply, refused or {})


def is_loopback(host: str) -> bool:
    """Whether host names this machine without DNS: localhost or a loopback address."""
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_settings(smtp: SmtpSettings, password: str | None) -> None:
    """Reject conflicting SMTP settings up front (plain text to a remote host, AUTH without password)."""
    if smtp.tls == "none" and not is_loopback(smtp.host) and not smtp.allow_plaintext_remote:
        raise SettingsError(
            f'smtp.tls = "none" would send mail{" and credentials" if smtp.username else ""} in plain '
            f'text to {smtp.host}; use smtp.tls = "starttls" or "implicit", or set '
            "smtp.allow_plaintext_remote = true if that network is trusted")
    if smtp.username and not password:
        raise SettingsError("smtp.username is set but no password: set DUNNING_SMTP__PASSWORD")
    if password and not smtp.username:
        raise SettingsError("an SMTP password is set (DUNNING_SMTP__PASSWORD) but smtp.username is not")


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    """A verifying client context: system CAs plus smtp.ca_file, hostname checked, TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if smtp.ca_file:
        try:
            context.load_verify_locations(cafile=smtp.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"smtp.ca_file: cannot load {smtp.ca_file}: {exc}") from None
    return context


class _Reconnect(Exception):
    """The connection failed before MAIL was accepted: nothing was handed over, try another one."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


class _Connection:
    """One pooled SMTP connection, used by one send at a time."""

    __slots__ = ("smtp", "protocol", "transactions", "last_used", "clean", "size", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.smtp: aiosmtplib.SMTP | None = None
        self.protocol: SMTPProtocol | None = None  # smtp.protocol as of the connect
        self.transactions = 0
        self.last_used = 0.0
        self.clean = True  # False after an aborted transaction: RSET before the next MAIL
        self.size = False  # the server announced SIZE
        self.timer = ReplyTimer(loop)

    @property
    def connected(self) -> bool:
        return self.smtp is not None and self.smtp.is_connected

    def attach(self, smtp: aiosmtplib.SMTP, now: float) -> None:
        """Start using a freshly connected session."""
        self.smtp, self.protocol, self.size = smtp, smtp.protocol, smtp.supports_extension("size")
        self.transactions, self.clean, self.last_used = 0, True, now

    def drop(self) -> None:
        """Close without a word: after an error the server's state is unknown."""
        if self.smtp is not None:
            self.smtp.close()
        self.smtp = self.protocol = None
        self.timer.stop()

    def retire(self) -> None:
        """Say QUIT and close without waiting for the reply (recycling must not stall a send)."""
        smtp, self.smtp, self.protocol = self.smtp, None, None
        if smtp is not None and smtp.is_connected and smtp.protocol is not None:
            try:
                smtp.protocol.write(b"QUIT\r\n")
            except SMTPException:
                pass
        if smtp is not None:
            smtp.close()
        self.timer.stop()


class SmtpTransport:
    """A pool of smtp.concurrency connections; send() may be called concurrently."""

    def __init__(self, smtp: SmtpSettings, *, password: str | None = None) -> None:
        if password is None and smtp.password is not None:
            password = smtp.password.get_secret_value()
        check_settings(smtp, password or None)
        self.settings = smtp
        self._password = password or None
        self._tls = tls_context(smtp) if smtp.tls != "none" else None
        self._where = f"{smtp.host}:{smtp.port}"
        self._pool: Pool[_Connection] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: list[_Connection] = []
        self._local_hostname = "localhost"
        self._failures = 0
        self._fatal: DeliveryError | None = None

    async def __aenter__(self) -> SmtpTransport:
        self._local_hostname = await asyncio.to_thread(_local_hostname)
        self._loop = asyncio.get_running_loop()
        self._connections = [_Connection(self._loop) for _ in range(self.settings.concurrency)]
        self._pool = Pool(self._loop, self._connections)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(self._quit(c) for c in self._connections), return_exceptions=True)
        self._pool = None

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> Outcome:
        """Deliver one message; see the module docstring for what each outcome means."""
        if self._pool is None:
            raise RuntimeError("SmtpTransport is used outside `async with`")
        if self._fatal is not None:
            raise self._fatal
        originals: dict[str, str] = {}  # envelope (ASCII) address -> the caller's spelling
        for recipient in recipients:
            originals.setdefault(envelope_address(recipient, "RCPT TO"), recipient)
        if not originals:
            raise MessageError("RCPT TO", "no recipient")
        if not isinstance(message, bytes):
            raise TypeError("message must be bytes")
        mail_from = envelope_address(sender, "MAIL FROM")
        connection = await self._pool.get()
        try:
            # Framed only now: a copy per waiting send would hold a batch's worth of fresh memory.
            data = _wire_data(message)
            outcome = await self._send_on(connection, mail_from, list(originals), data)
        except BaseException:
            connection.drop()
            raise
        finally:
            self._pool.put(connection)
        if outcome.refused:
            outcome = replace(outcome, refused={originals[a]: r for a, r in outcome.refused.items()})
        return outcome

    async def _send_on(self, connection: _Connection, sender: str, recipients: list[str],
                       data: bytes) -> Outcome:
        last = _Reconnect("no attempt made")
        for _ in range(ATTEMPTS_PER_SEND):
            try:
                if not self._reusable(connection):
                    await self._ready(connection)
                outcome = await self._transaction(connection, sender, recipients, data)
                connection.last_used = self._loop.time()  # type: ignore[union-attr]
                return outcome
            except _Reconnect as exc:
                connection.drop()
                last = exc
                self._connection_failed(exc)
        return Outcome("retry", last.code, f"could not deliver to {self._where}: {last.reason}")

    def _connection_failed(self, exc: _Reconnect) -> None:
        self._failures += 1
        log.warning("SMTP connection to %s failed (%d in a row): %s", self._where, self._failures,
                    exc.reason)
        if self._failures >= self.settings.max_consecutive_connection_errors:
            self._fatal = DeliveryError(
                f"SMTP server {self._where}: {self._failures} connection failures in a row, stopping "
                f"(last error: {exc.reason})", smtp_code=exc.code)
            raise self._fatal

    def _reusable(self, connection: _Connection) -> bool:
        """Whether the connection can take the next MAIL as it is (the usual case)."""
        assert self._loop is not None
        return (connection.clean and connection.connected
                and connection.transactions < self.settings.messages_per_connection
                and self._loop.time() - connection.last_used <= self.settings.idle_seconds)

    async def _ready(self, connection: _Connection) -> None:
        """Recycle a connection that is worn or idle, and connect when needed."""
        loop_time = asyncio.get_running_loop().time()
        if connection.connected and (
                connection.transactions >= self.settings.messages_per_connection
                or loop_time - connection.last_used > self.settings.idle_seconds):
            connection.retire()
        if not connection.connected:
            connection.drop()
            connection.attach(await self._connect(), loop_time)
        elif not connection.clean:
            await _command(connection, connection.smtp.rset, self.settings.command_timeout)
            connection.clean = True

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.command_timeout, local_hostname=self._local_hostname,
            use_tls=s.tls == "implicit", start_tls=s.tls == "starttls", tls_context=self._tls,
            username=s.username, password=self._password)
        try:
            await smtp.connect(timeout=s.connect_timeout)
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
        except BaseException as exc:
            smtp.close()
            self._refuse_insecure(exc)
            if isinstance(exc, SMTPConnectResponseError):
                raise _Reconnect(f"greeting {exc.code} {exc.message}", exc.code) from None
            if isinstance(exc, _BROKEN):
                raise _Reconnect(_describe(exc), getattr(exc, "code", None)) from None
            raise
        return smtp

    def _refuse_insecure(self, exc: BaseException) -> None:
        """TLS and AUTH failures stop the run at once: retrying cannot fix them, plain text is no option."""
        cause = _ssl_cause(exc)
        if cause is not None:
            self._fatal = DeliveryError(f"TLS with {self._where} failed, not sending in plain text: {cause}")
        elif isinstance(exc, SMTPAuthenticationError):
            self._fatal = DeliveryError(f"SMTP AUTH refused by {self._where}: {exc.code} {exc.message}",
                                        smtp_code=exc.code)
        elif isinstance(exc, SMTPException) and not isinstance(exc, (SMTPResponseException, *_LOST)):
            what = "STARTTLS" if "starttls" in str(exc).lower() else "SMTP"
            self._fatal = DeliveryError(f"{what} with {self._where} failed, not sending: {exc}")
        if self._fatal is not None:
            raise self._fatal

    async def _transaction(self, connection: _Connection, sender: str, recipients: list[str],
                           data: bytes) -> Outcome:
        # Addresses were validated by envelope_address (no control characters, no spaces): the
        # commands are written as they are.
        protocol, timeout = connection.protocol, self.settings.command_timeout
        assert protocol is not None
        size = b" SIZE=%d" % len(data) if connection.size else b""
        try:
            protocol.write(b"MAIL FROM:<%s>%s\r\n" % (sender.encode(), size))
            reply = await connection.timer.reply(protocol, timeout)
        except _BROKEN as exc:
            raise _Reconnect(f"connection lost before MAIL: {_describe(exc)}") from None
        if reply.code == 421:
            raise _Reconnect(f"MAIL {reply.code} {reply.message}", reply.code)
        connection.clean = False
        if reply.code != 250:
            return by_code(reply.code, reply.message)
        self._failures = 0
        connection.transactions += 1
        return await self._recipients_and_data(connection, recipients, data)

    async def _recipients_and_data(self, connection: _Connection, recipients: list[str],
                                   data: bytes) -> Outcome:
        protocol, timer, timeout = connection.protocol, connection.timer, self.settings.command_timeout
        assert protocol is not None
        refused: dict[str, tuple[int, str]] = {}
        try:
            for recipient in recipients:
                protocol.write(b"RCPT TO:<%s>\r\n" % recipient.encode())
                reply = await timer.reply(protocol, timeout)
                if reply.code == 421:
                    return self._lost(connection, by_code(421, reply.message, refused))
                if reply.code not in (250, 251):
                    refused[recipient] = (reply.code, reply.message)
            if len(refused) == len(recipients):
                return _all_refused(refused)
            protocol.write(b"DATA\r\n")
            reply = await timer.reply(protocol, timeout)
        except _BROKEN as exc:
            return self._lost(connection, Outcome("retry", None, f"connection lost after MAIL, before "
                                                  f"the message was sent: {_describe(exc)}", refused))
        if reply.code != 354:
            if reply.code == 421:
                connection.drop()
            return by_code(reply.code, reply.message, refused)
        return await self._data(connection, data, refused)

    async def _data(self, connection: _Connection, data: bytes,
                    refused: dict[str, tuple[int, str]]) -> Outcome:
        protocol = connection.protocol
        assert protocol is not None
        try:
            protocol.write(data)
        except _BROKEN as exc:
            return self._lost(connection, Outcome("retry", None, f"connection lost before the message "
                                                  f"was sent: {_describe(exc)}", refused))
        try:
            reply = await connection.timer.reply(protocol, self.settings.data_timeout)
        except _BROKEN as exc:
            return self._lost(connection, Outcome(
                "unknown", None, f"no reply to the end of data, the server may hold the message: "
                f"{_describe(exc)}", refused))
        connection.clean = True  # the final reply ends the transaction, whatever its code
        if reply.code == 421:
            connection.drop()
        return by_code(reply.code, reply.message, refused)

    @staticmethod
    def _lost(connection: _Connection, outcome: Outcome) -> Outcome:
        connection.drop()
        return outcome

    async def _quit(self, connection: _Connection) -> None:
        smtp, connection.smtp, connection.protocol = connection.smtp, None, None
        connection.timer.stop()
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit(timeout=min(2.0, self.settings.command_timeout))
            except _BROKEN:
                pass
            finally:
                smtp.close()


async def _command(connection: _Connection, command, timeout: float) -> None:
    """Run a between-transactions command (RSET); a failure here means the connection is gone."""
    try:
        await command(timeout=timeout)
    except _BROKEN as exc:
        raise _Reconnect(f"RSET failed: {_describe(exc)}", getattr(exc, "code", None)) from None


def _all_refused(refused: dict[str, tuple[int, str]]) -> Outcome:
    """Every recipient refused: retry if any refusal was temporary, else failed."""
    code, reply = next(((c, r) for c, r in refused.values() if 400 <= c < 500),
                       next(iter(refused.values())))
    return by_code(code, reply, refused)


def _wire_data(message: bytes) -> bytes:
    """CRLF line endings, leading dots doubled, the terminating dot: what goes after DATA."""
    if isinstance(message, DotSafeBytes) and message.endswith(b"\r\n"):
        return message + b".\r\n"  # build_message output that needs no dot-stuffing
    if not isinstance(message, bytes):
        raise TypeError("message must be bytes")
    if not isinstance(message, CrlfBytes):  # build_message output is CRLF by construction
        crlf = message.count(b"\r\n")
        if crlf != message.count(b"\n") or crlf != message.count(b"\r"):
            message = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    message = message.replace(b"\r\n.", b"\r\n..")
    if message.startswith(b"."):
        message = b"." + message
    return message + b".\r\n"


def _ssl_cause(exc: BaseException | None) -> BaseException | None:
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ssl.SSLError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SMTPResponseException):
        return f"{exc.code} {exc.message}"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    return f"{text} ({cause})" if cause is not None and str(cause) and str(cause) not in text else text


def _local_hostname() -> str:
    """The name sent in EHLO: this host's FQDN when it is a plain ASCII name, else "localhost"."""
    name = socket.getfqdn()
    return name if name.isascii() and name and all(c.isalnum() or c in ".-" for c in name) else "localhost"
