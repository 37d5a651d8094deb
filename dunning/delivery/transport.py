"""SMTP delivery over aiosmtplib: a pool of reused connections, TLS that fails closed, clear outcomes.

Outcomes: "sent" (2xx to the final dot), "retry" (4xx, or the connection lost before the message was
handed over), "failed" (5xx), "unknown" (the server may hold the message: the final reply was lost,
late, or out of step). Each reply is checked against the command it answers (MAIL 250, RCPT 250/251,
DATA 354: the state machine of dunning.delivery.envelope; the final dot 2xx/4xx/5xx); any other reply,
or one no command asked for, means the session is desynchronized: it is dropped, and the email is
"unknown" if its data went out, else retried.
The outcome lists the recipients accepted at RCPT: a message counts for those alone. The transport
never retries a message itself once MAIL was accepted; it only reconnects and starts again while
nothing was handed over yet.

Once aiosmtplib has opened a session (greeting, EHLO, STARTTLS, AUTH), its transport moves to
dunning.delivery.replies.Replies: commands are written straight to it, MAIL, RCPT and DATA together when
the server announces PIPELINING, and each reply is read without a per-command timer (see
dunning.delivery.timer, whose clock a test may pass as `timers`). The addresses were validated by
envelope_address, and the pool hands each connection to one send at a time, which is what aiosmtplib's
per-command checks, lock and asyncio.wait_for would otherwise pay for on every command.

With PIPELINING, a send whose message data is ready hands its connection to the next waiting send
before the final reply: the data then goes out in the same write as that send's MAIL, RCPT and DATA
(RFC 2920 lets message content open a group of commands), one round trip a message instead of two.
Replies come in order, so the next send reads only after the final reply was read; should the session
end there, the next send has handed nothing over and starts again on a new connection. The next send asks
for its record (before_data) only once the send before has returned its outcome, so that whoever records
outcomes has that one before the next message goes out on the connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import aiosmtplib

from dunning.delivery.checks import check_settings, is_loopback, tls_context
from dunning.delivery.envelope import Envelope, Opened, Verdict
from dunning.delivery.mime import envelope_address, has_8bit
from dunning.delivery.outcome import Outcome, by_code
from dunning.delivery.pool import Pool
from dunning.delivery.reconnect import Outage
from dunning.delivery.replies import Replies
from dunning.delivery.session import (
    BROKEN,
    Connection,
    Reconnect,
    WireData,
    describe,
    done_reading,
    local_hostname,
    open_session,
    stayed_in_step,
)
from dunning.delivery.timer import Timers
from dunning.errors import DeliveryError, MessageError
from dunning.settings import SmtpSettings

__all__ = ["ATTEMPTS_PER_SEND", "Outcome", "by_code", "is_loopback", "check_settings", "tls_context", "SmtpTransport"]

log = logging.getLogger(__name__)

ATTEMPTS_PER_SEND = 3  # connection attempts one send makes before "retry", unless an outage is ridden out


class SmtpTransport:
    """A pool of smtp.concurrency connections; send() may be called concurrently.

    timers is the clock of reply timeouts and idle connections: the running event loop unless given
    (a test passes one it moves itself).
    """

    def __init__(self, smtp: SmtpSettings, *, password: str | None = None, timers: Timers | None = None,
                 outage: Outage | None = None) -> None:
        if password is None and smtp.password is not None:
            password = smtp.password.get_secret_value()
        check_settings(smtp, password or None)
        self.settings = smtp
        self._password = password or None
        self._tls = tls_context(smtp) if smtp.tls != "none" else None
        self._where = f"{smtp.host}:{smtp.port}"
        self._pool: Pool[Connection] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._given_timers = timers
        self._timers: Timers | None = None
        self._connections: list[Connection] = []
        self._local_hostname = "localhost"
        self._failures = 0
        self._outage = outage or Outage(smtp.reconnect_seconds, where=self._where)
        self._fatal: DeliveryError | None = None
        self._eight_bit = smtp.eight_bit
        # A connection handed over before its send returned: done once that send has returned its outcome.
        self._returning: dict[Connection, asyncio.Future[None]] = {}

    @property
    def eight_bit(self) -> bool:
        """Whether to build 8-bit messages: allowed by settings, and the latest server took them."""
        return self._eight_bit

    async def __aenter__(self) -> SmtpTransport:
        ehlo_name = self.settings.ehlo_name
        self._local_hostname = ehlo_name if ehlo_name is not None else await asyncio.to_thread(local_hostname)
        self._loop = asyncio.get_running_loop()
        self._timers = self._given_timers or self._loop
        self._connections = [Connection(self._timers) for _ in range(self.settings.concurrency)]
        self._pool = Pool(self._loop, self._connections)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Say QUIT on each session between transactions; close the others without a word (a command written
        while DATA is open would become message data); a send still under way opens no new session."""
        self._fatal = self._fatal or DeliveryError(f"the SMTP transport to {self._where} was closed")
        await asyncio.gather(*(c.quit(min(2.0, self.settings.command_timeout)) for c in self._connections),
                             return_exceptions=True)
        self._pool = None
        self._returning.clear()

    async def send(self, sender: str, recipients: Sequence[str], message: bytes, *,
                   seven_bit: Callable[[], bytes] | None = None,
                   before_data: Callable[[], Awaitable[None]] | None = None) -> Outcome:
        """Deliver one message; see the module docstring for what each outcome means.

        A message with 8-bit bytes goes with BODY=8BITMIME; to a server without 8BITMIME it is
        replaced by seven_bit() (the same message in 7-bit encodings), or fails when there is none.
        before_data is called as MAIL, RCPT and DATA go out, and what it returns is awaited once the
        server opened DATA, before the message goes out (to record that it may now be delivered: the
        record can be written while the server answers); should that raise, the session is dropped with
        nothing handed over. On a connection handed over by a send that has not returned yet, before_data
        is called only once that send has returned, and its caller, in the same step, has the outcome.
        """
        if self._pool is None:
            raise RuntimeError("SmtpTransport is used outside `async with`")
        if self._fatal is not None:
            raise self._fatal
        originals: dict[str, str] = {}  # envelope (ASCII) address -> the caller's spelling
        respelled = False
        for recipient in recipients:
            address = envelope_address(recipient, "RCPT TO")
            originals.setdefault(address, recipient)
            respelled = respelled or address != recipient
        if not originals:
            raise MessageError("RCPT TO", "no recipient")
        if not isinstance(message, bytes):
            raise TypeError("message must be bytes")
        mail_from = envelope_address(sender, "MAIL FROM")
        connection = await self._pool.get()
        released = False
        returning: asyncio.Future[None] | None = None  # made when handed over before this send returns

        def release() -> None:
            nonlocal released
            if not released and self._pool is not None:
                released = True
                self._pool.put(connection)

        def hand_over() -> None:
            nonlocal returning
            if not released and self._loop is not None:
                returning = self._returning[connection] = self._loop.create_future()
            release()

        try:
            outcome = await self._send_on(connection, mail_from, list(originals), message, seven_bit, hand_over,
                                          before_data)
        except BaseException:
            if not released:
                connection.drop()
            raise
        finally:
            release()
            if returning is not None and not returning.done():  # cancelled if the next send was
                returning.set_result(None)
        if respelled and (outcome.refused or outcome.accepted):
            outcome = replace(outcome, refused={originals[a]: r for a, r in outcome.refused.items()},
                              accepted=tuple(originals[a] for a in outcome.accepted))
        return outcome

    async def _send_on(self, connection: Connection, sender: str, recipients: list[str],
                       message: bytes, seven_bit: Callable[[], bytes] | None,
                       hand_over: Callable[[], None], before_data: Callable[[], Awaitable[None]] | None) -> Outcome:
        last: Reconnect | None = None
        data = None
        for attempt in itertools.count(1):
            if self._fatal is not None:
                raise self._fatal
            try:
                if not self._reusable(connection):
                    await self._ready(connection)
                if data is None or (data.eight_bit and not connection.eight_bit):
                    if not connection.eight_bit and has_8bit(message):
                        if seven_bit is None:
                            return Outcome("failed", None, f"{self._where} does not take 8-bit data "
                                           "(no 8BITMIME) and the message has 8-bit bytes")
                        message = seven_bit()
                    # Framed only now: a copy per waiting send would hold a batch's worth of fresh memory.
                    data = WireData(message)
                outcome = await self._transaction(connection, sender, recipients, data, hand_over, before_data)
                connection.last_used = self._now()
                return outcome
            except Reconnect as exc:
                connection.drop()
                last = exc
                self._connection_failed(exc)
                if attempt >= ATTEMPTS_PER_SEND and not self._outage.riding_out():
                    break
                await self._outage.wait()
        assert last is not None  # the loop ends only after a failed attempt
        return Outcome("retry", last.code, f"could not deliver to {self._where}: {last.reason}")

    def _connection_failed(self, exc: Reconnect) -> None:
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

    def _reusable(self, connection: Connection) -> bool:
        """Whether the connection can take the next MAIL as it is (the usual case)."""
        return (connection.clean and connection.connected
                and connection.transactions < self.settings.messages_per_connection
                and self._now() - connection.last_used <= self.settings.idle_seconds)

    async def _ready(self, connection: Connection) -> None:
        """Recycle a connection that is worn or idle, and connect when needed."""
        now = self._now()
        if connection.connected and (
                connection.transactions >= self.settings.messages_per_connection
                or now - connection.last_used > self.settings.idle_seconds):
            connection.retire()
        if not connection.connected:
            connection.drop()
            connection.attach(await self._connect(), now, self.settings)
            self._eight_bit = connection.eight_bit
        elif not connection.clean:
            await connection.reset(self.settings.command_timeout)

    async def _connect(self) -> aiosmtplib.SMTP:
        try:
            return await open_session(self.settings, local_hostname=self._local_hostname, tls=self._tls,
                                      password=self._password)
        except DeliveryError as exc:
            self._fatal = exc
            raise
        except BaseException:
            if self._fatal is not None:  # another send stopped the run meanwhile
                raise self._fatal from None
            raise

    async def _transaction(self, connection: Connection, sender: str, recipients: list[str],
                           data: WireData, hand_over: Callable[[], None],
                           before_data: Callable[[], Awaitable[None]] | None = None) -> Outcome:
        """MAIL, RCPT and DATA, then the message; the send before hears whether the replies were in step."""
        replies = connection.replies
        assert replies is not None
        previous = self._returning.get(connection)
        if previous is not None and previous.done():
            previous = None
        going_out = before_data() if before_data is not None and previous is None else None
        try:
            ready = await self._envelope(connection, sender, recipients, data)
        finally:
            connection.vouch(replies)
        if isinstance(ready, Outcome):
            return ready
        if before_data is not None:
            try:
                if going_out is None:  # the send before on this connection returns first (it read its reply)
                    if previous is not None:
                        await previous
                    going_out = before_data()
                await going_out
            except BaseException:
                connection.drop_session(replies)  # DATA is open: only closing ends it without a message
                raise
        return await self._data(connection, replies, data.wire, ready.refused, ready.accepted, hand_over)

    async def _envelope(self, connection: Connection, sender: str, recipients: list[str],
                        data: WireData) -> Outcome | Opened:
        """MAIL, RCPT and DATA, each reply judged by the Envelope against the stage it answers.

        Pipelined, the replies still come one per command and in order, and the message itself only
        follows a 354 to DATA: a lost connection before the reply to MAIL has handed nothing over.
        """
        replies = connection.replies
        assert replies is not None
        envelope = Envelope(sender, recipients, connection.pipelining, size=data.size if connection.size else None,
                            eight_bit=data.eight_bit)
        step = envelope.opening()
        while step.result is None:
            try:
                if step.write is not None:
                    replies.write(step.write, step.asks)
                reply = connection.ready(replies) or await connection.read(replies, self.settings.command_timeout)
            except BROKEN as exc:
                step = envelope.lost(exc)
                break
            answered = envelope.stage
            step = envelope.answer(reply.code, reply.message)
            if answered == "MAIL" and envelope.mail is not None:
                self._mail_answered(connection, envelope.mail)
        if step.out_of_step is not None:
            replies.out_of_step(step.out_of_step)
        if step.drop:
            connection.drop_session(replies)
        if isinstance(step.result, Reconnect):
            raise step.result
        assert step.result is not None
        return step.result

    def _mail_answered(self, connection: Connection, verdict: Verdict) -> None:
        """A transaction began (MAIL accepted or refused): RSET before the next; an accepted one counts."""
        connection.clean = False
        if verdict is Verdict.ACCEPTED:
            self._failures = 0
            self._outage.ended()
            connection.transactions += 1

    async def _data(self, connection: Connection, replies: Replies, data: tuple[bytes, ...],
                    refused: dict[str, tuple[int, str]], accepted: tuple[str, ...],
                    hand_over: Callable[[], None]) -> Outcome:
        """Write the message data on the session that opened DATA (which the send before may have ended
        meanwhile: the write then fails, with nothing handed over), and read the final reply."""
        loop, pool = self._loop, self._pool
        assert loop is not None  # inside `async with`
        chained = (connection.pipelining and pool is not None and pool.waiting
                   and connection.transactions < self.settings.messages_per_connection)
        read: asyncio.Future[None] | None = None
        in_step: asyncio.Future[bool] | None = None
        try:
            if chained:
                in_step = loop.create_future()
                connection.in_step = (replies, in_step)
                connection.clean = True  # the final dot ends the transaction, whatever its reply
                connection.last_used = self._now()
                read = connection.previous_reader = loop.create_future()
                hand_over()  # before defer(): the next send writes before the deferred data's own flush
                replies.defer(*data)
            else:
                replies.write_lines(data)
        except BROKEN as exc:
            done_reading(read)
            return self._lost(connection, replies, Outcome(
                "retry", None, f"connection lost before the message was sent: {describe(exc)}", refused))
        try:
            reply = await connection.timer.reply(replies, self.settings.data_timeout)
        except BROKEN as exc:
            return self._lost(connection, replies, Outcome(
                "unknown", None, f"no reply in step to the end of data, the server may hold the message: "
                f"{describe(exc)}", refused))
        except BaseException:
            if chained:  # the final reply is still due: the next send must not read it as its own
                connection.drop_session(replies)
            raise
        finally:
            done_reading(read)
        if not chained:
            connection.clean = True  # the final reply ends the transaction, whatever its code
        if reply.code == 421:
            connection.drop_session(replies)
        outcome = by_code(reply.code, reply.message, refused, accepted)
        if in_step is not None and outcome.status != "unknown" and not await stayed_in_step(
                in_step, connection.in_step_timer, self.settings.command_timeout * 3):
            return Outcome("unknown", reply.code, f"the replies after {reply.code} {reply.message} to the end of "
                           "data were out of step: it may have answered another command; the server may hold "
                           "the message", refused)
        if outcome.status == "unknown":  # a reply that no final dot is answered with: out of step
            connection.drop_session(replies)
            return replace(outcome, reply=f"desynchronized: {reply.code} {reply.message} in reply to the "
                           "end of data; the server may hold the message")
        return outcome

    def _now(self) -> float:
        timers = self._timers
        if timers is None:
            raise RuntimeError("SmtpTransport is used outside `async with`")
        return timers.time()

    @staticmethod
    def _lost(connection: Connection, replies: Replies, outcome: Outcome) -> Outcome:
        connection.drop_session(replies)
        return outcome
