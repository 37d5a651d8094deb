"""One pooled SMTP connection and what a send writes on it: the session's state, the framed message data."""

from __future__ import annotations

import asyncio
import socket
import ssl

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

from dunning.delivery.checks import ssl_cause
from dunning.delivery.mime import CrlfBytes, DotSafeBytes, has_8bit
from dunning.delivery.replies import Replies
from dunning.delivery.timer import GiveUpTimer, ReplyTimer, Timers
from dunning.errors import DeliveryError
from dunning.settings import SmtpSettings

__all__ = ["LOST", "BROKEN", "Reconnect", "Connection", "done_reading", "stayed_in_step", "open_session", "refusal",
           "WireData", "wire_data", "describe", "local_hostname"]

LOST = (SMTPServerDisconnected, SMTPTimeoutError, ConnectionError, OSError)
BROKEN = (SMTPException, *LOST)  # lost, timed out, or a reply that cannot be parsed


class Reconnect(Exception):
    """The connection failed before MAIL was accepted: nothing was handed over, try another one."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


class Connection:
    """One pooled SMTP connection, used by one send at a time."""

    __slots__ = ("replies", "transactions", "last_used", "clean", "size", "pipelining", "eight_bit", "timer",
                 "previous_reader", "in_step", "in_step_timer")

    def __init__(self, timers: Timers) -> None:
        self.replies: Replies | None = None  # the session, once aiosmtplib has opened it
        self.transactions = 0
        self.last_used = 0.0
        self.clean = True  # False after an aborted transaction: RSET before the next MAIL
        self.size = self.pipelining = self.eight_bit = False  # what the server announced
        self.timer = ReplyTimer(timers)
        self.in_step_timer = GiveUpTimer(timers)  # how long the send before waits to hear it was in step
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

    def ready(self, replies: Replies) -> SMTPResponse | None:
        """The session's next reply if it can be read now without waiting, else None."""
        previous = self.previous_reader
        return replies.next_ready() if previous is None or previous.done() else None

    async def read(self, replies: Replies, timeout: float) -> SMTPResponse:
        """The session's next reply, once the send that handed this connection over has read its own."""
        previous = self.previous_reader
        if previous is not None and not previous.done():
            await previous
        # Pipelined replies have mostly arrived by the time they are read: no timer for those.
        return replies.next_ready() or await self.timer.reply(replies, timeout)

    async def reset(self, timeout: float) -> None:
        """RSET between transactions; a failure here means the connection is gone."""
        assert self.replies is not None
        try:
            self.replies.write(b"RSET\r\n")
            reply = await self.read(self.replies, timeout)
        except BROKEN as exc:
            raise Reconnect(f"RSET failed: {describe(exc)}") from None
        if reply.code != 250:
            raise Reconnect(f"RSET {reply.code} {reply.message}", reply.code)
        self.clean = True

    async def quit(self, timeout: float) -> None:
        """QUIT and close, waiting a little for the server's goodbye; a session in a transaction is only closed."""
        replies = self.replies
        if replies is not None and replies.idle:
            try:
                replies.write(b"QUIT\r\n")
                await self.read(replies, timeout)
            except BROKEN:
                pass
        self.drop()

    def retire(self) -> None:
        """Say QUIT and close without waiting for the reply (recycling must not stall a send); a session in a
        transaction is only closed."""
        if self.replies is not None and self.replies.idle:
            self.replies.write(b"QUIT\r\n")
        self.drop()


def done_reading(read: asyncio.Future[None] | None) -> None:
    """Let the send a connection was handed to read its replies."""
    if read is not None and not read.done():  # cancelled if that send was cancelled while waiting
        read.set_result(None)


async def stayed_in_step(in_step: asyncio.Future[bool], timer: GiveUpTimer, seconds: float) -> bool:
    """Whether the next send found the replies after ours in step (yes, if it could not tell in time)."""
    return await timer.wait(in_step, seconds, True)


async def open_session(settings: SmtpSettings, *, local_hostname: str, tls: ssl.SSLContext | None,
                       password: str | None) -> aiosmtplib.SMTP:
    """A session opened by aiosmtplib (greeting, EHLO, STARTTLS, AUTH); Reconnect when the connection fails,
    DeliveryError when TLS or AUTH fails."""
    s = settings
    smtp = aiosmtplib.SMTP(
        hostname=s.host, port=s.port, timeout=s.command_timeout, local_hostname=local_hostname,
        use_tls=s.tls == "implicit", start_tls=s.tls == "starttls", tls_context=tls,
        username=s.username, password=password)
    try:
        await smtp.connect(timeout=s.connect_timeout)
        if smtp.is_ehlo_or_helo_needed:
            await smtp.ehlo()
    except BaseException as exc:
        smtp.close()
        fatal = refusal(exc, f"{s.host}:{s.port}")
        if fatal is not None:
            raise fatal from exc
        if isinstance(exc, SMTPConnectResponseError):
            raise Reconnect(f"greeting {exc.code} {exc.message}", exc.code) from None
        if isinstance(exc, BROKEN):
            raise Reconnect(describe(exc), getattr(exc, "code", None)) from None
        raise
    return smtp


def refusal(exc: BaseException, where: str) -> DeliveryError | None:
    """The error that stops the run when TLS or AUTH failed: retrying cannot fix them, plain text is no option."""
    cause = ssl_cause(exc)
    if cause is not None:
        return DeliveryError(f"TLS with {where} failed, not sending in plain text: {cause}")
    if isinstance(exc, SMTPAuthenticationError):
        return DeliveryError(f"SMTP AUTH refused by {where}: {exc.code} {exc.message}", smtp_code=exc.code)
    if isinstance(exc, SMTPException) and not isinstance(exc, (SMTPResponseException, *LOST)):
        what = "STARTTLS" if "starttls" in str(exc).lower() else "SMTP"
        return DeliveryError(f"{what} with {where} failed, not sending: {exc}")
    return None


class WireData:
    """A message as it goes after DATA (its pieces, written without joining them), its size there, and whether it
    needs BODY=8BITMIME."""

    __slots__ = ("wire", "size", "eight_bit")

    def __init__(self, message: bytes) -> None:
        body = wire_data(message)
        self.wire = (body, _END_OF_DATA)
        self.size = len(body) + len(_END_OF_DATA)
        self.eight_bit = has_8bit(message)


_END_OF_DATA = b".\r\n"


def wire_data(message: bytes) -> bytes:
    """CRLF line endings, leading dots doubled: what goes after DATA, before the terminating dot."""
    if isinstance(message, DotSafeBytes) and message.endswith(b"\r\n"):
        return message  # build_message output that needs no dot-stuffing
    if not isinstance(message, bytes):
        raise TypeError("message must be bytes")
    if not isinstance(message, CrlfBytes):  # build_message output is CRLF by construction
        crlf = message.count(b"\r\n")
        if crlf != message.count(b"\n") or crlf != message.count(b"\r"):
            message = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    message = message.replace(b"\r\n.", b"\r\n..")
    return b"." + message if message.startswith(b".") else message


def describe(exc: BaseException) -> str:
    """An exception as an outcome's reply text: the SMTP code and text, or the error and its cause."""
    if isinstance(exc, SMTPResponseException):
        return f"{exc.code} {exc.message}"
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    return f"{text} ({cause})" if cause is not None and str(cause) and str(cause) not in text else text


def local_hostname() -> str:
    """The name sent in EHLO: this host's FQDN when it is a plain ASCII name, else "localhost"."""
    name = socket.getfqdn()
    return name if name.isascii() and name and all(c.isalnum() or c in ".-" for c in name) else "localhost"
