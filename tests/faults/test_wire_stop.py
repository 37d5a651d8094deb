"""Stopping with sessions in every state: QUIT goes only on a session between transactions; one whose DATA is
open, or whose pipelined MAIL, RCPT and DATA are still unanswered, is closed with nothing more written."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from dunning.delivery.capture import CaptureServer, Fault
from dunning.delivery.transport import Outcome, SmtpTransport
from dunning.errors import DeliveryError
from dunning.settings import SmtpSettings
from tests.faults.wiretap import Wire, WireTap, read_wire

SENDER = "billing@example.com"
TO = ["compta@contoso.example"]
T = TypeVar("T")
MESSAGE = (b"From: billing@example.com\r\nTo: compta@contoso.example\r\nSubject: Payment failed\r\n"
           b"Message-ID: <1@example.com>\r\n\r\nYour payment failed.\r\n")


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture
def tap(capture: CaptureServer) -> Iterator[WireTap]:
    with WireTap(capture.port) as relay:
        yield relay


def settings(tap: WireTap, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = dict(host="127.0.0.1", port=tap.port, connect_timeout=2.0, command_timeout=2.0,
                                     data_timeout=2.0, concurrency=1, reconnect_seconds=0)
    return SmtpSettings(**{**values, **overrides})


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a test's coroutine, failing it should it never end (a send and a close waiting on each other)."""
    return asyncio.run(asyncio.wait_for(main, 10))


async def settle() -> None:
    """A few turns of the event loop: whatever the closing transport writes is written by then."""
    for _ in range(5):
        await asyncio.sleep(0)


def only_session(tap: WireTap) -> Wire:
    [wire] = tap.wires()
    return wire


def test_a_session_between_transactions_says_quit():
    """The usual end: after a message and its final reply, QUIT goes, and the message went whole."""
    with CaptureServer() as capture, WireTap(capture.port) as tap:
        async def main() -> Outcome:
            async with SmtpTransport(settings(tap)) as transport:
                return await transport.send(SENDER, TO, MESSAGE)
        assert run(main()).status == "sent"
        wire = only_session(tap)
    assert wire.commands[-1] == b"QUIT" and wire.messages == [MESSAGE] and wire.left_open is None


def test_a_session_whose_data_is_open_is_closed_without_a_word(capture, tap):
    """The transport closes while a send has DATA open and waits before its data: nothing follows DATA on the
    wire (a QUIT there would be the first line of the message the data completes), the server keeps nothing,
    and the send, let go on, finds the session gone with its data never sent."""
    async def main() -> Outcome:
        data_open, go_on = asyncio.Event(), asyncio.Event()

        async def before_data() -> None:  # awaited once the server opened DATA
            data_open.set()
            await go_on.wait()

        transport = await SmtpTransport(settings(tap)).__aenter__()
        send = asyncio.create_task(transport.send(SENDER, TO, MESSAGE, before_data=before_data))
        await data_open.wait()
        closing = asyncio.create_task(transport.__aexit__(None, None, None))
        await settle()
        go_on.set()
        outcome = await send
        await closing
        return outcome

    outcome = run(main())
    assert outcome.status == "retry" and "before the message was sent" in outcome.reply
    wire = only_session(tap)
    assert wire.commands[-1] == b"DATA" and wire.left_open == b""
    assert capture.messages == []


@pytest.mark.parametrize("held", ["mail", "rcpt"])
def test_a_session_with_pipelined_commands_unanswered_is_closed_without_a_word(capture, tap, held):
    """The transport closes while the server has not yet answered the pipelined MAIL, RCPT and DATA: nothing is
    written after DATA, and nothing is kept, whatever the server answers afterwards."""
    fault = Fault(held, 250, held=True)
    capture.add_fault(fault)

    async def main() -> Outcome | DeliveryError:
        transport = await SmtpTransport(settings(tap)).__aenter__()
        send = asyncio.create_task(transport.send(SENDER, TO, MESSAGE))
        assert await asyncio.to_thread(fault.reached.wait, 5.0), "the server never got the command"
        await transport.__aexit__(None, None, None)
        fault.release()  # the server answers now, to a session the client has closed
        try:
            return await send
        except DeliveryError as stopped:  # MAIL unanswered: nothing handed over, and no new session opened
            return stopped

    outcome = run(main())
    # Nothing handed over either way: stopped (MAIL's reply not read as the transport closed, and no new session
    # opened), or a retry (MAIL's reply read before the close, which the server sent before it held RCPT's).
    stopped = isinstance(outcome, DeliveryError) and "was closed" in str(outcome)
    assert stopped or (held == "rcpt" and isinstance(outcome, Outcome) and outcome.status == "retry"), outcome
    wire = only_session(tap)
    assert wire.commands[-3:] == [b"MAIL FROM:<billing@example.com> SIZE=%d" % (len(MESSAGE) + 3),
                                  b"RCPT TO:<compta@contoso.example>", b"DATA"]
    assert wire.left_open == b"" and capture.messages == []


def test_reading_the_wire_tells_commands_from_message_data():
    """A QUIT inside message data is data; a session cut in its data leaves it open."""
    wire = read_wire(b"EHLO x\r\nMAIL FROM:<a@b>\r\nDATA\r\nQUIT\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert wire.commands == [b"EHLO x", b"MAIL FROM:<a@b>", b"DATA", b"QUIT"]
    assert wire.messages == [b"QUIT\r\nSubject: x\r\n\r\nbody\r\n"] and wire.left_open is None
    cut = read_wire(b"MAIL FROM:<a@b>\r\nDATA\r\nSubject: x\r\n")
    assert cut.commands == [b"MAIL FROM:<a@b>", b"DATA"] and cut.left_open == b"Subject: x\r\n"
