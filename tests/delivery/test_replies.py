"""Replies: an SMTP session's replies parsed whole and in order, however the bytes arrive."""

from __future__ import annotations

import asyncio
import socket
from itertools import pairwise

import pytest
from aiosmtplib import SMTPResponse, SMTPResponseException, SMTPServerDisconnected
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.delivery.replies import MAX_REPLY, Desynchronized, Replies

STREAM = b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n354 Go ahead\r\n550 5.1.1 No such user\n"
EXPECTED = [SMTPResponse(250, "mx.example\nPIPELINING\n8BITMIME"), SMTPResponse(354, "Go ahead"),
            SMTPResponse(550, "5.1.1 No such user")]


def read_after_feeding(chunks: list[bytes], count: int, *, then_eof: bool = False, asked: int | None = None) -> list:
    """Feed the chunks to a Replies that asked for `asked` replies (default `count`), then read `count`
    replies (an exception counts as a reply)."""
    async def main() -> list:
        replies = Replies(asyncio.get_running_loop(), None)  # type: ignore[arg-type]
        replies.expect(count if asked is None else asked)
        for chunk in chunks:
            replies.data_received(chunk)
        if then_eof:
            replies.eof_received()
        results = []
        for _ in range(count):
            try:
                results.append(await replies.read_response())
            except Exception as exc:
                results.append(exc)
        return results
    return asyncio.run(main())


@settings(max_examples=150, deadline=None)
@given(st.sets(st.integers(1, len(STREAM) - 1)))
def test_replies_come_whole_and_in_order_however_the_stream_is_cut(cuts):
    """Multi-line replies, several replies in one read, or a reply cut anywhere: the same replies, in order."""
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in pairwise(points)]
    assert read_after_feeding(chunks, 3) == EXPECTED


def test_a_read_waits_for_its_reply():
    """A read started before the reply arrives returns it once it is complete."""
    async def main() -> SMTPResponse:
        replies = Replies(asyncio.get_running_loop(), None)  # type: ignore[arg-type]
        replies.expect(1)
        reading = asyncio.create_task(replies.read_response())
        await asyncio.sleep(0)
        replies.data_received(b"250 o")
        await asyncio.sleep(0)
        assert not reading.done()
        replies.data_received(b"k\r\n")
        return await reading
    assert asyncio.run(main()) == SMTPResponse(250, "ok")


def test_replies_before_a_lost_connection_are_still_read_then_the_loss():
    """Replies already received are read first; the next read reports the disconnect."""
    [first, second] = read_after_feeding([b"250 ok\r\n", b"250 partial"], 2, then_eof=True)
    assert first == SMTPResponse(250, "ok")
    assert isinstance(second, SMTPServerDisconnected)


def test_replies_parsed_before_read_the_same_and_a_malformed_one_still_fails():
    """A server repeats its replies, which are parsed once: read again they are the same, and a reply whose
    last line was seen in a good reply still fails when its first line does not fit."""
    assert read_after_feeding([STREAM], 3) == EXPECTED
    assert read_after_feeding([STREAM * 2], 6) == EXPECTED * 2
    [result] = read_after_feeding([b"250-PIPELINING\r\n354 Go ahead\r\n"], 1)
    assert isinstance(result, SMTPResponseException) and "Malformed" in result.message


@pytest.mark.parametrize("stream", [b"hello\r\n", b"250-one\r\n451 two\r\n", b"2500 ok\r\n"])
def test_a_malformed_reply_is_an_error(stream):
    """A line without a code, a multi-line reply changing code, or a code too long cannot be parsed."""
    [result] = read_after_feeding([stream], 1)
    assert isinstance(result, SMTPResponseException) and "Malformed" in result.message


@pytest.mark.parametrize("stream", [b"250 ok\r\n250 extra\r\n", b"250 ok\r\n354 stray\r\n"])
def test_a_reply_no_command_asked_for_desynchronizes_the_session(stream):
    """One reply more than the commands asked for fails the session: even the reply before it is not read."""
    [result] = read_after_feeding([stream], 1, asked=1)
    assert isinstance(result, Desynchronized) and "no command asked for" in str(result)


def test_an_endless_reply_is_refused():
    """A reply that never ends (no line end, or endless continuation lines) is an error, not a memory sink."""
    [result] = read_after_feeding([b"250-" + b"x" * 60 + b"\r\n"] * (MAX_REPLY // 64 + 2), 1)
    assert isinstance(result, SMTPResponseException) and "too long" in result.message


def deferred_then(step, pieces: tuple[bytes, ...] = (b"<data>",)) -> bytes:
    """What the other end of a real socket receives after defer(*pieces) and then step(replies)."""
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        replies = Replies(loop, transport)
        transport.set_protocol(replies)
        replies.defer(*pieces)
        await step(replies)
        await asyncio.sleep(0.05)
        try:
            return theirs.recv(4096)
        except BlockingIOError:
            return b""
        finally:
            transport.close()
            theirs.close()
    return asyncio.run(main())


def test_deferred_data_goes_first_in_the_next_write():
    """Data deferred, then commands written in the same turn of the loop: the data first, then the commands."""
    async def write_next(replies: Replies) -> None:
        replies.write(b"MAIL FROM:<a@example.com>\r\n")
    assert deferred_then(write_next) == b"<data>MAIL FROM:<a@example.com>\r\n"


def test_deferred_data_goes_alone_when_no_write_follows():
    """Nothing written after it: the deferred data still goes, once the loop has run what was ready."""
    async def nothing(replies: Replies) -> None:
        await asyncio.sleep(0)
    assert deferred_then(nothing) == b"<data>"


def test_message_data_in_pieces_goes_whole_and_in_order():
    """Data deferred in pieces (a message and its end), then the next data written in pieces: every piece, in order."""
    async def write_pieces(replies: Replies) -> None:
        replies.write_lines((b"<next>", b".\r\n"))
    assert deferred_then(write_pieces, (b"<da", b"ta>", b".\r\n")) == b"<data>.\r\n<next>.\r\n"


def test_a_closed_session_sends_no_deferred_data():
    """Closing the session drops the deferred data with it (it was never handed over)."""
    async def close(replies: Replies) -> None:
        replies.close()
    assert deferred_then(close) == b""


@pytest.mark.parametrize(("line", "expected"), [
    (b"250 2.0.0 Ok: queued as 4F1\r\n", SMTPResponse(250, "2.0.0 Ok: queued as 4F1")),
    (b"250  padded text \t\r\n", SMTPResponse(250, "padded text")),
    (b"250 \r\n", SMTPResponse(250, "")),
    (b"250\r\n", SMTPResponse(250, "")),
    (b"354 bare line feed\n", SMTPResponse(354, "bare line feed")),
    (b"550 caf\xc3\xa9 \xff\r\n", SMTPResponse(550, "caf\u00e9 \udcff")),
])
def test_one_line_replies_keep_their_code_and_text(line, expected):
    """A one-line reply: its code, and its text without the blanks around it (bytes that are not UTF-8 kept)."""
    assert read_after_feeding([line], 1) == [expected]
