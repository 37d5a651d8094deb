"""An established SMTP session's replies, read in order: what lets the transport pipeline (RFC 2920).

aiosmtplib opens the session (greeting, EHLO, STARTTLS, AUTH), then hands its transport to Replies.
aiosmtplib's own protocol keeps a single pending reply and drops whatever arrives before it is
collected, so commands written together would lose replies; Replies queues every complete reply
until it is read.

Message data may also be deferred: it then goes out in the same write as the next commands (another
send's MAIL, RCPT and DATA, which RFC 2920 lets follow message content in one group), or alone at the
end of the event loop's current turn when none come.

Every write says how many replies it asks for. A reply that arrives when none is due (a stray or
extra line) means the session is out of step: it is then failed with Desynchronized, and each
later read raises, so no reply is ever taken for another command's.

A session is idle once every reply asked for was read and the last one was not a 354: only then may a
command that ends it (QUIT) go; one with message data owed or replies outstanding is only closed.
"""

from __future__ import annotations

import asyncio
from collections import deque

import aiosmtplib
from aiosmtplib import SMTPException, SMTPResponse, SMTPResponseException, SMTPServerDisconnected

__all__ = ["MAX_REPLY", "Replies", "parse_reply"]

MAX_REPLY = 32 * 1024  # a longer reply (many lines, or no line end) is a broken or hostile server
_INVALID = 500  # the code aiosmtplib gives a reply that cannot be parsed
_AFTER_CODE = (b" ", b"-", b"\r", b"")  # what may follow a reply line's code
# Replies already parsed, as they came (a server repeats the same few): parsed once per process, bounded.
_KNOWN: dict[bytes, SMTPResponse] = {}
_KNOWN_MAX, _KNOWN_LENGTH = 256, 512


class Desynchronized(SMTPException):
    """The server sent a reply no command asked for, or one that does not fit the command it answers."""


class Replies(asyncio.Protocol):
    """The protocol of one session once it is established: write commands, read replies in order."""

    __slots__ = ("_loop", "transport", "_buffer", "_replies", "_waiter", "_error", "_deferred", "_due", "_data_owed")

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.WriteTransport) -> None:
        self._loop = loop
        self.transport: asyncio.WriteTransport | None = transport
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._deferred: tuple[bytes, ...] | None = None
        self._due = 0  # replies asked for and not arrived yet
        self._data_owed = False  # the latest reply was a 354: whatever is written next is message data

    @classmethod
    def take_over(cls, smtp: aiosmtplib.SMTP) -> Replies:
        """Move a connected session's transport to a new Replies (aiosmtplib's object is done with)."""
        transport = smtp.transport
        if transport is None or transport.is_closing():
            raise SMTPServerDisconnected("Connection lost")
        # A write transport, though not always a subclass of asyncio.WriteTransport (uvloop's are not).
        replies = cls(asyncio.get_running_loop(), transport)  # type: ignore[arg-type]
        transport.set_protocol(replies)
        smtp.protocol = smtp.transport = None
        return replies

    @property
    def open(self) -> bool:
        return self._writable() is not None

    def _writable(self) -> asyncio.WriteTransport | None:
        """The transport, while the session is open."""
        transport = self.transport
        return transport if self._error is None and transport is not None and not transport.is_closing() else None

    def write(self, data: bytes, replies: int = 1) -> None:
        """Send bytes (one command, or several pipelined ones) that ask for `replies` replies, after any deferred
        data."""
        transport, deferred = self._writing(replies)
        if deferred is None:
            transport.write(data)
        else:
            transport.writelines((*deferred, data))

    def write_lines(self, buffers: tuple[bytes, ...], replies: int = 1) -> None:
        """Send bytes given in pieces (message data and its end, written without joining them), after any deferred
        data."""
        transport, deferred = self._writing(replies)
        transport.writelines(buffers if deferred is None else deferred + buffers)

    def _writing(self, replies: int) -> tuple[asyncio.WriteTransport, tuple[bytes, ...] | None]:
        """The open transport to write on, and the deferred data to write first; `replies` more replies are due."""
        transport = self._writable()
        if transport is None:
            raise self._error or SMTPServerDisconnected("Connection lost")
        self._due += replies
        deferred, self._deferred = self._deferred, None
        return transport, deferred

    def defer(self, *buffers: bytes) -> None:
        """Send message data (in pieces) with the next write, or alone once the event loop has run what is ready
        now."""
        if not self.open:
            raise self._error or SMTPServerDisconnected("Connection lost")
        if self._deferred is not None:
            raise RuntimeError("message data is already waiting to be sent")
        self._due += 1
        self._deferred = buffers
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        transport = self._writable()
        if self._deferred is not None and transport is not None:
            deferred, self._deferred = self._deferred, None
            transport.writelines(deferred)

    def expect(self, replies: int) -> None:
        """Count replies as asked for (commands written outside write(), such as aiosmtplib's)."""
        self._due += replies

    def next_ready(self) -> SMTPResponse | None:
        """The oldest reply not read yet if it has arrived, else None (nothing waited for)."""
        if isinstance(self._error, Desynchronized):
            raise self._error
        return self._replies.popleft() if self._replies else None

    @property
    def idle(self) -> bool:
        """Whether the session is open and between transactions: every reply asked for read, no message data
        owed (QUIT written now would be read as the start of a message that the data after it completes)."""
        return self.open and self._due == 0 and not self._replies and not self._data_owed

    @property
    def waiting(self) -> bool:
        """Whether a reply has arrived that no one has read yet."""
        return bool(self._replies)

    @property
    def desynchronized(self) -> bool:
        """Whether the session was found out of step."""
        return isinstance(self._error, Desynchronized)

    def out_of_step(self, reason: str) -> Desynchronized:
        """Fail the session as desynchronized (a reply did not fit its command); the error to raise."""
        self._fail(Desynchronized(reason))
        error = self._error
        return error if isinstance(error, Desynchronized) else Desynchronized(reason)

    async def read_response(self) -> SMTPResponse:
        """The oldest reply not read yet, waiting for it if needed (no timeout: see ReplyTimer)."""
        if isinstance(self._error, Desynchronized):
            raise self._error
        while not self._replies:
            if self._error is not None:
                raise self._error
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._replies.popleft()

    def close(self) -> None:
        """Close the connection at once; a pending read fails."""
        self._fail(SMTPServerDisconnected("Connection closed"))
        self._deferred = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        if self._error is not None:
            return
        buffer = self._buffer
        if buffer:
            buffer += data
            data = bytes(buffer)
            buffer.clear()
        begin = start = 0  # where the reply being read begins; where its next line does
        while (end := data.find(b"\n", start)) >= 0:
            line_code_ends = start + 3
            start = end + 1
            if data[line_code_ends:line_code_ends + 1] != b"-":  # the last line of a reply
                self._complete(data[begin:start])
                if self._error is not None:
                    return
                begin = start
        if begin < len(data):
            buffer += data[begin:]
        if len(buffer) > MAX_REPLY:
            self._fail(SMTPResponseException(_INVALID, "Response too long"))
        elif self._replies:
            self._wake()

    def eof_received(self) -> bool:
        self._fail(SMTPServerDisconnected("Unexpected EOF received"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        error = SMTPServerDisconnected("Connection lost")
        error.__cause__ = exc
        self._fail(error)
        self.transport = None

    def _complete(self, raw: bytes) -> None:
        """Queue one whole reply (one or more lines); one that nothing asked for desynchronizes."""
        if self._due <= 0:
            text = raw[:200].decode("utf-8", "replace").strip()
            self._fail(Desynchronized(f"a reply no command asked for: {text!r}"))
            return
        self._due -= 1
        reply = _KNOWN.get(raw)
        if reply is None:
            try:
                reply = parse_reply(raw)
            except SMTPResponseException as exc:
                self._fail(exc)
                return
            if len(_KNOWN) < _KNOWN_MAX and len(raw) <= _KNOWN_LENGTH:
                _KNOWN[raw] = reply
        self._data_owed = reply.code == 354
        self._replies.append(reply)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def parse_reply(raw: bytes) -> SMTPResponse:
    """One whole reply (one or more lines, each ending in LF): its code and text; SMTPResponseException when a
    line is malformed or its code differs from the first line's."""
    if raw[3:4] == b" " and raw[:3].isdigit() and raw.count(b"\n") == 1:  # one line, the usual reply
        return SMTPResponse(int(raw[:3]), raw[4:].strip(b" \t\r\n").decode("utf-8", "surrogateescape"))
    code, lines = None, []
    for line in raw.split(b"\n")[:-1]:
        try:
            line_code = int(line[:3])
        except ValueError:
            line_code = None
        if line_code is None or (code is not None and line_code != code) or line[3:4] not in _AFTER_CODE:
            text = line.decode("utf-8", "replace").strip()
            raise SMTPResponseException(_INVALID, f"Malformed SMTP response line: {text}")
        code = line_code
        lines.append(line[4:].strip(b" \t\r"))
    assert code is not None  # every line above carried one
    return SMTPResponse(code, b"\n".join(lines).decode("utf-8", "surrogateescape"))
