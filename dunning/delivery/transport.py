"""SMTP delivery over aiosmtplib: a pool of reused connections, TLS that fails closed, clear outcomes.

Outcomes: "sent" (2xx to the final dot), "retry" (4xx, or the connection lost before the message was
handed over), "failed" (5xx), "unknown" (the server may hold the message: the final reply was lost,
late, or out of step). Each reply is checked against the command it answers (MAIL 250, RCPT 250/251,
DATA 354, the final dot 2xx/4xx/5xx); any other reply, or one no command asked for, means the session
is desynchronized: it is dropped, and the email is "unknown" if its data went out, else retried.
The outcome lists the recipients accepted at RCPT: a message counts for those alone. The transport
never retries a message itself once MAIL was accepted; it only reconnects and starts again while
nothing was handed over yet.

Once aiosmtplib has opened a session (greeting, EHLO, STARTTLS, AUTH), its transport moves to
dunning.delivery.replies.Replies: commands are written straight to it, MAIL, RCPT and DATA together when
the server announces PIPELINING, and each reply is read without a per-command timer (see
dunning.delivery.pool). The addresses were validated by envelope_address, and the pool hands each
connection to one send at a time, which is what aiosmtplib's per-command checks, lock and
asyncio.wait_for would otherwise pay for on every command.

With PIPELINING, a send whose message data is ready hands its connection to the next waiting send
before the final reply: the data then goes out in the same write as that send's MAIL, RCPT and DATA
(RFC 2920 lets message content open a group of commands), one round trip a message instead of two.
Replies come in order, so the next send reads only after the final reply was read; should the session
end there, the next send has handed nothing over and starts again on a new connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectResponseError,
    SMTPException,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from dunning.delivery.mime import CrlfBytes, DotSafeBytes, envelope_address
from dunning.delivery.pool import Pool
from dunning.delivery.reconnect import Outage
from dunning.delivery.replies import Desynchronized, Replies
from dunning.delivery.timer import ReplyTimer
from dunning.errors import DeliveryError, MessageError, SettingsError
from dunning.settings import SmtpSettings
from dunning.vocabulary import OutcomeStatus

__all__ = ["ATTEMPTS_PER_SEND", "Outcome", "by_code", "is_loopback", "check_settings", "tls_context", "SmtpTransport"]

log = logging.getLogger(__name__)

ATTEMPTS_PER_SEND = 3  # connection attempts one send makes before "retry", unless an outage is ridden out
_LOST = (SMTPServerDisconnected, SMTPTimeoutError, ConnectionError, OSError)
_BROKEN = (SMTPException, *_LOST)  # lost, timed out, or a reply that cannot be parsed


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message: status, the server's code and reply, recipients refused at RCPT."""

    status: OutcomeStatus
    code: int | None
    reply: str
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    accepted: tuple[str, ...] = ()


def by_code(code: int, reply: str, refused: dict[str, tuple[int, str]] | None = None,
            accepted: tuple[str, ...] = ()) -> Outcome:
    """The outcome of a final SMTP reply: 2xx sent, 4xx retry, 5xx failed, anything else unknown."""
    status: OutcomeStatus = ("sent" if 200 <= code < 300 else "retry" if 400 <= code < 500
                             else "failed" if 500 <= code < 600 else "unknown")
    return Outcome(status, code, reply, refused or {}, accepted if status == "sent" else ())


def _refusal(code: int) -> bool:
    """Whether a reply refuses its command (4xx, 5xx), as opposed to one that fits no command."""
    return 400 <= code < 600


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

    __slots__ = ("replies", "transactions", "last_used", "clean", "size", "pipelining", "eight_bit", "timer",
                 "previous_reader", "in_step")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.replies: Replies | None = None  # the session, once aiosmtplib has opened it
        self.transactions = 0
        self.last_used = 0.0
        self.clean = True  # False after an aborted transaction: RSET before the next MAIL
        self.size = self.pipelining = self.eight_bit = False  # what the server announced
        self.timer = ReplyTimer(loop)
        self.previous_reader: asyncio.Future[None] | None = None  # done once the sender before has its final reply
        # The send before, which read its final reply on this session, waits to hear whether the
        # replies after it were in step: a reply it missed would have made it read the next send's.
        self.in_step: tuple[Replies, asyncio.Future[bool]] | None = None

    @property
    def connected(self) -> bool:
        return self.replies is not None and self.replies.open

    def attach(self, smtp: aiosmtplib.SMTP, now: float, settings: SmtpSettings) -> None:
        """Start using a freshly opened session."""
        self.size = smtp.supports_extension("size")
        self.pipelining = settings.pipelining and smtp.supports_extension("pipelining")
        self.eight_bit = settings.eight_bit and smtp.supports_extension("8bitmime")
        self.replies = Replies.take_over(smtp)
        self.transactions, self.clean, self.last_used = 0, True, now

    def vouch(self, replies: Replies) -> None:
        """Tell the send before whether this session's replies stayed in step after its final reply."""
        pending, self.in_step = self.in_step, None
        if pending is not None and not pending[1].done():
            pending[1].set_result(pending[0] is not replies or not replies.desynchronized)

    def drop(self) -> None:
        """Close without a word: after an error the server's state is unknown."""
        if self.replies is not None:
            self.vouch(self.replies)
            self.replies.close()
            self.replies = None
        self.timer.stop()

    def drop_session(self, replies: Replies) -> None:
        """Close a session a send was using, and drop the connection if it still is that session."""
        if self.replies is replies:
            self.drop()
        else:
            replies.close()

    async def read(self, replies: Replies, timeout: float) -> SMTPResponse:
        """The session's next reply, once the send that handed this connection over has read its own."""
        previous = self.previous_reader
        if previous is not None and not previous.done():
            await previous
        # Pipelined replies have mostly arrived by the time they are read: no timer for those.
        return replies.next_ready() or await self.timer.reply(replies, timeout)

    def retire(self) -> None:
        """Say QUIT and close without waiting for the reply (recycling must not stall a send)."""
        if self.replies is not None and self.replies.open:
            self.replies.write(b"QUIT\r\n")
        self.drop()


class SmtpTransport:
    """A pool of smtp.concurrency connections; send() may be called concurrently."""

    def __init__(self, smtp: SmtpSettings, *, password: str | None = None, outage: Outage | None = None) -> None:
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
        self._outage = outage or Outage(smtp.reconnect_seconds, where=self._where)
        self._fatal: DeliveryError | None = None
        self._eight_bit = smtp.eight_bit

    @property
    def eight_bit(self) -> bool:
        """Whether to build 8-bit messages: allowed by settings, and the latest server took them."""
        return self._eight_bit

    async def __aenter__(self) -> SmtpTransport:
        ehlo_name = self.settings.ehlo_name
        self._local_hostname = ehlo_name if ehlo_name is not None else await asyncio.to_thread(_local_hostname)
        self._loop = asyncio.get_running_loop()
        self._connections = [_Connection(self._loop) for _ in range(self.settings.concurrency)]
        self._pool = Pool(self._loop, self._connections)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(self._quit(c) for c in self._connections), return_exceptions=True)
        self._pool = None

    async def send(self, sender: str, recipients: Sequence[str], message: bytes, *,
                   seven_bit: Callable[[], bytes] | None = None,
                   before_data: Callable[[], Awaitable[None]] | None = None) -> Outcome:
        """Deliver one message; see the module docstring for what each outcome means.

        A message with 8-bit bytes goes with BODY=8BITMIME; to a server without 8BITMIME it is
        replaced by seven_bit() (the same message in 7-bit encodings), or fails when there is none.
        before_data is called as MAIL, RCPT and DATA go out, and what it returns is awaited once the
        server opened DATA, before the message goes out (to record that it may now be delivered: the
        record can be written while the server answers); should that raise, the session is dropped with
        nothing handed over.
        """
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
        released = False

        def hand_over() -> None:
            nonlocal released
            if not released and self._pool is not None:
                released = True
                self._pool.put(connection)

        try:
            outcome = await self._send_on(connection, mail_from, list(originals), message, seven_bit, hand_over,
                                          before_data)
        except BaseException:
            if not released:
                connection.drop()
            raise
        finally:
            hand_over()
        if outcome.refused or outcome.accepted:
            outcome = replace(outcome, refused={originals[a]: r for a, r in outcome.refused.items()},
                              accepted=tuple(originals[a] for a in outcome.accepted))
        return outcome

    async def _send_on(self, connection: _Connection, sender: str, recipients: list[str],
                       message: bytes, seven_bit: Callable[[], bytes] | None,
                       hand_over: Callable[[], None], before_data: Callable[[], Awaitable[None]] | None) -> Outcome:
        last = _Reconnect("no attempt made")
        data = None
        for attempt in itertools.count(1):
            if self._fatal is not None:
                raise self._fatal
            try:
                if not self._reusable(connection):
                    await self._ready(connection)
                if data is None or (data.eight_bit and not connection.eight_bit):
                    if not connection.eight_bit and not message.isascii():
                        if seven_bit is None:
                            return Outcome("failed", None, f"{self._where} does not take 8-bit data "
                                           "(no 8BITMIME) and the message has 8-bit bytes")
                        message = seven_bit()
                    # Framed only now: a copy per waiting send would hold a batch's worth of fresh memory.
                    data = _WireData(message)
                outcome = await self._transaction(connection, sender, recipients, data, hand_over, before_data)
                connection.last_used = self._loop.time()  # type: ignore[union-attr]
                return outcome
            except _Reconnect as exc:
                connection.drop()
                last = exc
                self._connection_failed(exc)
                if attempt >= ATTEMPTS_PER_SEND and not self._outage.riding_out():
                    break
                await self._outage.wait()
        return Outcome("retry", last.code, f"could not deliver to {self._where}: {last.reason}")

    def _connection_failed(self, exc: _Reconnect) -> None:
        self._failures += 1
        self._outage.failed()
        log.warning("SMTP connection to %s failed (%d in a row): %s", self._where, self._failures,
                    exc.reason)
        if self._failures >= self.settings.max_consecutive_connection_errors and not self._outage.riding_out():
            self._fatal = DeliveryError(
                f"SMTP server {self._where}: {self._failures} connection failures in a row over "
                f"{self._outage.lasted():.1f} s, stopping "
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
            connection.attach(await self._connect(), loop_time, self.settings)
            self._eight_bit = connection.eight_bit
        elif not connection.clean:
            await self._reset(connection)

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
                           data: _WireData, hand_over: Callable[[], None],
                           before_data: Callable[[], Awaitable[None]] | None = None) -> Outcome:
        """MAIL, RCPT and DATA, then the message; the send before hears whether the replies were in step."""
        replies = connection.replies
        assert replies is not None
        going_out = before_data() if before_data is not None else None
        try:
            ready = await self._envelope(connection, sender, recipients, data)
        finally:
            connection.vouch(replies)
        if isinstance(ready, Outcome):
            return ready
        if going_out is not None:
            try:
                await going_out
            except BaseException:
                connection.drop_session(replies)  # DATA is open: only closing ends it without a message
                raise
        return await self._data(connection, replies, data.wire, ready[0], ready[1], hand_over)

    async def _envelope(self, connection: _Connection, sender: str, recipients: list[str],
                        data: _WireData) -> Outcome | tuple[dict[str, tuple[int, str]], tuple[str, ...]]:
        """MAIL, RCPT and DATA; written together when the server pipelines, else one at a time.

        Pipelined, the replies still come one per command and in order, and the message itself only
        follows a 354 to DATA: a lost connection before the reply to MAIL has handed nothing over.
        """
        # Addresses were validated by envelope_address (no control characters, no spaces): the
        # commands are written as they are.
        replies, timeout = connection.replies, self.settings.command_timeout
        assert replies is not None
        size = b" SIZE=%d" % len(data.wire) if connection.size else b""
        body = b" BODY=8BITMIME" if data.eight_bit else b""
        mail = b"MAIL FROM:<%s>%s%s\r\n" % (sender.encode(), size, body)
        rcpts = [b"RCPT TO:<%s>\r\n" % recipient.encode() for recipient in recipients]
        pipelined = connection.pipelining
        try:
            if pipelined:
                replies.write(b"".join([mail, *rcpts, b"DATA\r\n"]), len(rcpts) + 2)
            else:
                replies.write(mail)
            reply = await connection.read(replies, timeout)
        except _BROKEN as exc:
            raise _Reconnect(f"connection lost before MAIL: {_describe(exc)}") from None
        if reply.code == 421:
            raise _Reconnect(f"MAIL {reply.code} {reply.message}", reply.code)
        if reply.code != 250 and not _refusal(reply.code):
            replies.out_of_step(f"{reply.code} {reply.message} in reply to MAIL")
            connection.drop_session(replies)
            raise _Reconnect(f"desynchronized: {reply.code} {reply.message} in reply to MAIL", reply.code)
        connection.clean = False
        if reply.code != 250:
            # Pipelined, the RCPT and DATA replies (errors after a refused MAIL) are still due; if they do not
            # come in step, the refusal may have answered another command: retried, not failed.
            if pipelined and not await self._skip_replies(connection, replies, len(rcpts) + 1):
                return Outcome("retry", reply.code, f"MAIL {reply.code} {reply.message}, then the replies "
                               "went out of step")
            return by_code(reply.code, reply.message)
        self._failures = 0
        self._outage.ended()
        connection.transactions += 1
        refused: dict[str, tuple[int, str]] = {}
        try:
            for recipient, rcpt in zip(recipients, rcpts, strict=True):
                if not pipelined:
                    replies.write(rcpt)
                reply = await connection.read(replies, timeout)
                if reply.code == 421:
                    return self._lost(connection, replies, by_code(421, reply.message, refused))
                if reply.code not in (250, 251):
                    if not _refusal(reply.code):
                        raise replies.out_of_step(f"{reply.code} {reply.message} in reply to RCPT")
                    refused[recipient] = (reply.code, reply.message)
            if len(refused) == len(recipients) and not pipelined:
                return _all_refused(refused)
            if not pipelined:
                replies.write(b"DATA\r\n")
            reply = await connection.read(replies, timeout)
            if reply.code != 354 and not _refusal(reply.code):
                raise replies.out_of_step(f"{reply.code} {reply.message} in reply to DATA")
        except _BROKEN as exc:
            what = "out of step" if isinstance(exc, Desynchronized) else "lost"
            return self._lost(connection, replies, Outcome(
                "retry", None, f"connection {what} after MAIL, before the message was sent: {_describe(exc)}",
                refused))
        if len(refused) == len(recipients):
            if reply.code == 354:  # a server that opens DATA with no recipient: nothing can be delivered
                connection.drop_session(replies)
            return _all_refused(refused)
        if reply.code != 354:
            if reply.code == 421:
                connection.drop_session(replies)
            return by_code(reply.code, reply.message, refused)
        return refused, tuple(r for r in recipients if r not in refused)

    async def _skip_replies(self, connection: _Connection, replies: Replies, count: int) -> bool:
        """Read and ignore replies to commands already written; whether they came, in step (else the
        session is dropped)."""
        try:
            for _ in range(count):
                code = (await connection.read(replies, self.settings.command_timeout)).code
                if code == 354:  # DATA opened after all: only closing ends it without a message
                    connection.drop_session(replies)
                    return True
                if not _refusal(code):
                    replies.out_of_step(f"{code} in reply to RCPT or DATA after a refused MAIL")
                    connection.drop_session(replies)
                    return False
        except _BROKEN:
            connection.drop_session(replies)
            return False
        return True

    async def _reset(self, connection: _Connection) -> None:
        """RSET between transactions; a failure here means the connection is gone."""
        assert connection.replies is not None
        try:
            connection.replies.write(b"RSET\r\n")
            reply = await connection.read(connection.replies, self.settings.command_timeout)
        except _BROKEN as exc:
            raise _Reconnect(f"RSET failed: {_describe(exc)}") from None
        if reply.code != 250:
            raise _Reconnect(f"RSET {reply.code} {reply.message}", reply.code)
        connection.clean = True

    async def _data(self, connection: _Connection, replies: Replies, data: bytes,
                    refused: dict[str, tuple[int, str]], accepted: tuple[str, ...],
                    hand_over: Callable[[], None]) -> Outcome:
        """Write the message data on the session that opened DATA (which the send before may have ended
        meanwhile: the write then fails, with nothing handed over), and read the final reply."""
        chained = (connection.pipelining and self._pool.waiting  # type: ignore[union-attr]
                   and connection.transactions < self.settings.messages_per_connection)
        read = in_step = None
        try:
            if chained:
                in_step = self._loop.create_future()  # type: ignore[union-attr]
                connection.in_step = (replies, in_step)
                connection.clean = True  # the final dot ends the transaction, whatever its reply
                connection.last_used = self._loop.time()  # type: ignore[union-attr]
                read = connection.previous_reader = self._loop.create_future()  # type: ignore[union-attr]
                hand_over()  # before defer(): the next send writes before the deferred data's own flush
                replies.defer(data)
            else:
                replies.write(data)
        except _BROKEN as exc:
            self._done_reading(read)
            return self._lost(connection, replies, Outcome(
                "retry", None, f"connection lost before the message was sent: {_describe(exc)}", refused))
        try:
            reply = await connection.timer.reply(replies, self.settings.data_timeout)
        except _BROKEN as exc:
            return self._lost(connection, replies, Outcome(
                "unknown", None, f"no reply in step to the end of data, the server may hold the message: "
                f"{_describe(exc)}", refused))
        except BaseException:
            if chained:  # the final reply is still due: the next send must not read it as its own
                connection.drop_session(replies)
            raise
        finally:
            self._done_reading(read)
        if not chained:
            connection.clean = True  # the final reply ends the transaction, whatever its code
        if reply.code == 421:
            connection.drop_session(replies)
        outcome = by_code(reply.code, reply.message, refused, accepted)
        if in_step is not None and outcome.status != "unknown" and not await self._stayed_in_step(in_step):
            return Outcome("unknown", reply.code, f"the replies after {reply.code} {reply.message} to the end of "
                           "data were out of step: it may have answered another command; the server may hold "
                           "the message", refused)
        if outcome.status == "unknown":  # a reply that no final dot is answered with: out of step
            connection.drop_session(replies)
            return replace(outcome, reply=f"desynchronized: {reply.code} {reply.message} in reply to the "
                           "end of data; the server may hold the message")
        return outcome

    async def _stayed_in_step(self, in_step: asyncio.Future[bool]) -> bool:
        """Whether the next send found the replies after ours in step (yes, if it could not tell in time)."""
        if not in_step.done():
            try:
                await asyncio.wait_for(asyncio.shield(in_step), self.settings.command_timeout * 3)
            except TimeoutError:
                return True
        return in_step.result()

    @staticmethod
    def _done_reading(read: asyncio.Future[None] | None) -> None:
        """Let the send this connection was handed to read its replies."""
        if read is not None and not read.done():  # cancelled if that send was cancelled while waiting
            read.set_result(None)

    @staticmethod
    def _lost(connection: _Connection, replies: Replies, outcome: Outcome) -> Outcome:
        connection.drop_session(replies)
        return outcome

    async def _quit(self, connection: _Connection) -> None:
        """QUIT and close, waiting a little for the server's goodbye."""
        if connection.connected and connection.replies is not None:
            try:
                connection.replies.write(b"QUIT\r\n")
                await connection.read(connection.replies, min(2.0, self.settings.command_timeout))
            except _BROKEN:
                pass
        connection.drop()


def _all_refused(refused: dict[str, tuple[int, str]]) -> Outcome:
    """Every recipient refused: retry if any refusal was temporary, else failed."""
    code, reply = next(((c, r) for c, r in refused.values() if 400 <= c < 500),
                       next(iter(refused.values())))
    return by_code(code, reply, refused)


class _WireData:
    """A message as it goes after DATA, and whether it needs BODY=8BITMIME."""

    __slots__ = ("wire", "eight_bit")

    def __init__(self, message: bytes) -> None:
        self.wire = _wire_data(message)
        self.eight_bit = not message.isascii()


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
