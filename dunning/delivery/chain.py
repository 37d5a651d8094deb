"""Sends chained on one pipelined connection: the connection handed to the next send before the final reply,
and how the send before hears that the replies after its own stayed in step.

A send whose message data is ready hands its connection to the next waiting send and defers its data, so
that the next send's MAIL, RCPT and DATA go out in the same write (RFC 2920). Replies come in order: the
next send reads only once the send before has read its final reply. The send before then needs to know
that the replies after its own were in step (had it missed a reply, it would have read the next send's):
when they came with its final reply, as they mostly do, it judges them itself, for the next send's envelope
and in the same turn of the event loop, so that neither send wakes only to tell the other; else the next
send reads on and vouches for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiosmtplib import SMTPResponse

from dunning.delivery.envelope import Envelope, Step
from dunning.delivery.replies import Replies
from dunning.delivery.session import Connection

__all__ = ["Chained", "Judge", "chain_next", "done_reading", "heard_now", "stayed_in_step"]

Chained = tuple[asyncio.Future[None], asyncio.Future[bool]]  # (done reading, stayed in step)
Judge = Callable[[Connection, Envelope, SMTPResponse], Step]  # an envelope's next step after a reply


def chain_next(connection: Connection, replies: Replies, data: bytes, loop: asyncio.AbstractEventLoop, now: float,
              release: Callable[[], None]) -> Chained:
    """Hand the connection to the next send before the final reply, the data deferred to go out with its
    commands; the futures the send before settles: done reading, and the answer to whether it stayed in step."""
    in_step: asyncio.Future[bool] = loop.create_future()
    connection.in_step = (replies, in_step)
    connection.clean = True  # the final dot ends the transaction, whatever its reply
    connection.last_used = now
    read: asyncio.Future[None] = loop.create_future()
    connection.previous_reader = read
    release()  # before defer(): the next send writes before the deferred data's own flush
    try:
        replies.defer(data)
    except BaseException:
        done_reading(read)  # the session is gone: the next send finds it so at once
        raise
    return read, in_step


def done_reading(read: asyncio.Future[None] | None) -> None:
    """Let the send a connection was handed to read its replies."""
    if read is not None and not read.done():  # cancelled if that send was cancelled while waiting
        read.set_result(None)


def heard_now(connection: Connection, replies: Replies, judge: Judge) -> bool | None:
    """Whether the replies after a final one stayed in step, when the send the connection went to can be
    judged from the replies already here (its envelope's, judged for it in order); else None."""
    envelope = connection.ahead
    if envelope is None or connection.replies is not replies:
        return None
    step = envelope.step
    while step.result is None and not replies.desynchronized and (reply := replies.next_ready()) is not None:
        step = judge(connection, envelope, reply)
    if step.result is None and not replies.desynchronized:
        return None
    if step.out_of_step is not None:
        replies.out_of_step(step.out_of_step)
    connection.in_step = None  # heard: the send it went to has nothing to vouch for
    return not replies.desynchronized


async def stayed_in_step(connection: Connection, in_step: asyncio.Future[bool], seconds: float) -> bool:
    """Whether the next send found the replies after ours in step (yes, if it could not tell in time)."""
    return await connection.in_step_timer.wait(in_step, seconds, True)
