"""SmtpTransport against real aiosmtpd servers on 127.0.0.1, with injected failures."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC

import pytest

from dunning.delivery.capture import CaptureServer, Fault
from dunning.delivery.transport import Outcome, SmtpTransport
from dunning.errors import DeliveryError, MessageError, SettingsError
from dunning.settings import SmtpSettings

SENDER = "billing@example.com"
TO = ["compta@contoso.example"]
MESSAGE = (b"From: billing@example.com\r\nTo: compta@contoso.example\r\nSubject: Payment failed\r\n"
           b"Message-ID: <1@example.com>\r\n\r\nYour payment failed.\r\n.leading dot\r\n")


def send_all(settings: SmtpSettings, count: int = 1, recipients=TO, message: bytes = MESSAGE,
             password: str | None = None) -> list[Outcome]:
    """Send `count` messages concurrently through one transport and return their outcomes."""
    async def main() -> list[Outcome]:
        async with SmtpTransport(settings, password=password) as transport:
            return await asyncio.gather(*(transport.send(SENDER, recipients, message)
                                          for _ in range(count)))
    return asyncio.run(main())


def send_one(settings: SmtpSettings, **kwargs) -> Outcome:
    return send_all(settings, 1, **kwargs)[0]


async def reached(fault: Fault) -> None:
    """Once the capture server holds the fault's reply, and the send has read every reply sent before it."""
    assert await asyncio.to_thread(fault.reached.wait, 5.0), f"the server never applied {fault}"
    await settle()


async def settle() -> None:
    """A few turns of the event loop: what is ready runs (a timer that came due, a reply that arrived)."""
    for _ in range(3):
        await asyncio.sleep(0)


def send_late(settings: SmtpSettings, timers, *late: tuple[Fault, float, bool]) -> Outcome:
    """Send MESSAGE once while the server holds the replies of the `late` faults: as each is reached, the
    transport's clock moves on by its seconds, then the reply goes if its flag says so."""
    async def main() -> Outcome:
        async with SmtpTransport(settings, timers=timers) as transport:
            send = asyncio.create_task(transport.send(SENDER, TO, MESSAGE))
            for fault, seconds, release in late:
                await reached(fault)
                timers.advance(seconds)
                if release:
                    fault.release()
            return await send
    return asyncio.run(main())


def test_a_message_is_sent_with_the_server_reply(capture, smtp_settings):
    """A 250 to the final dot is "sent" with the server's reply text, and the bytes arrive intact."""
    outcome = send_one(smtp_settings())
    assert outcome == Outcome("sent", 250, "2.0.0 OK: captured", {}, tuple(TO))
    [message] = capture.messages
    assert message.sender == SENDER and message.recipients == tuple(TO)
    assert message.data == MESSAGE
    assert message.parsed()["Subject"] == "Payment failed"


@pytest.mark.parametrize("code", [421, 451])
def test_temporary_failure_at_connect_reconnects_and_sends(capture, smtp_settings, code):
    """A 4xx greeting is a connection failure: the send reconnects and delivers once."""
    capture.add_fault(Fault("connect", code))
    assert send_one(smtp_settings(concurrency=1)).status == "sent"
    assert capture.connections == 2 and len(capture.messages) == 1


def test_421_at_mail_reconnects_and_sends(capture, smtp_settings):
    """A 421 to MAIL (server closing) happens before anything was handed over: reconnect, deliver once."""
    capture.add_fault(Fault("mail", 421))
    assert send_one(smtp_settings(concurrency=1)).status == "sent"
    assert capture.connections == 2 and len(capture.messages) == 1


def test_451_at_mail_is_retry(capture, smtp_settings):
    """A 451 to MAIL is a temporary refusal of this message: "retry" with the code and text."""
    capture.add_fault(Fault("mail", 451, "4.3.0 Try later"))
    assert send_one(smtp_settings()) == Outcome("retry", 451, "4.3.0 Try later", {})
    assert capture.messages == []


@pytest.mark.parametrize("code", [421, 451])
def test_temporary_failure_at_rcpt_is_retry(capture, smtp_settings, code):
    """A 4xx to the only RCPT is "retry" and nothing is delivered."""
    capture.add_fault(Fault("rcpt", code))
    outcome = send_one(smtp_settings())
    assert (outcome.status, outcome.code) == ("retry", code)
    assert capture.messages == [] and capture.count("DATA") == 0


@pytest.mark.parametrize("code", [421, 451])
def test_temporary_failure_after_data_is_retry(capture, smtp_settings, code):
    """A 4xx reply to the message itself is "retry"."""
    capture.add_fault(Fault("data", code))
    outcome = send_one(smtp_settings())
    assert (outcome.status, outcome.code) == ("retry", code)


def test_550_at_rcpt_is_failed_with_code_and_text(capture, smtp_settings):
    """A 550 to the only RCPT is "failed" with the server's code and text."""
    capture.add_fault(Fault("rcpt", 550, "5.1.1 No such user"))
    outcome = send_one(smtp_settings())
    assert outcome == Outcome("failed", 550, "5.1.1 No such user",
                              {"compta@contoso.example": (550, "5.1.1 No such user")})
    assert capture.count("DATA") == 0


def test_one_refused_recipient_does_not_stop_the_others(capture, smtp_settings):
    """A recipient refused at RCPT is listed in refused; the message still goes to the others."""
    capture.add_fault(Fault("rcpt", 550, "5.1.1 No such user", recipient="gone@contoso.example"))
    outcome = send_one(smtp_settings(), recipients=["gone@contoso.example", "boss@contoso.example"])
    assert outcome.status == "sent"
    assert outcome.refused == {"gone@contoso.example": (550, "5.1.1 No such user")}
    assert capture.messages[0].recipients == ("boss@contoso.example",)


def test_all_recipients_refused_with_a_temporary_code_is_retry(capture, smtp_settings):
    """When every recipient is refused and one refusal is temporary, the outcome is "retry"."""
    capture.add_fault(Fault("rcpt", 550, recipient="a@contoso.example"))
    capture.add_fault(Fault("rcpt", 452, "4.2.2 Mailbox full", recipient="b@contoso.example"))
    outcome = send_one(smtp_settings(), recipients=["a@contoso.example", "b@contoso.example"])
    assert (outcome.status, outcome.code) == ("retry", 452)
    assert set(outcome.refused) == {"a@contoso.example", "b@contoso.example"}


def test_554_after_data_is_failed(capture, smtp_settings):
    """A 554 reply to the message is "failed" with code and text."""
    capture.add_fault(Fault("data", 554, "5.6.0 Rejected as spam"))
    assert send_one(smtp_settings()) == Outcome("failed", 554, "5.6.0 Rejected as spam", {})


def test_connection_dropped_before_mail_reconnects_and_delivers_once(capture, smtp_settings):
    """A connection that dies at MAIL is replaced within the same send; the message arrives once."""
    capture.add_fault(Fault("mail", drop=True))
    assert send_one(smtp_settings(concurrency=1)).status == "sent"
    assert len(capture.messages) == 1 and capture.connections == 2


def test_connection_dropped_after_the_final_dot_is_unknown(capture, smtp_settings):
    """No reply after the final dot is "unknown": the server may hold the message, so no resend."""
    capture.add_fault(Fault("data", drop=True))
    outcome = send_one(smtp_settings(concurrency=1))
    assert (outcome.status, outcome.code) == ("unknown", None)
    assert len(capture.messages) == 1 and capture.count("DATA") == 1


def test_a_final_reply_slower_than_data_timeout_is_unknown(capture, smtp_settings, timers):
    """A final reply later than data_timeout is "unknown", and the transport does not resend."""
    late = Fault("data", 250, "OK", held=True)
    capture.add_fault(late)
    outcome = send_late(smtp_settings(concurrency=1, data_timeout=0.3), timers, (late, 0.31, False))
    assert (outcome.status, outcome.code) == ("unknown", None) and "Timed out" in outcome.reply
    assert capture.count("DATA") == 1 and capture.connections == 1


def test_a_dead_server_raises_delivery_error_after_consecutive_failures(smtp_settings, closed_port):
    """With nothing listening, DeliveryError names host, port and the last error once the limit is hit."""
    settings = smtp_settings(port=closed_port, max_consecutive_connection_errors=3, concurrency=1)
    with pytest.raises(DeliveryError) as caught:
        send_all(settings, 5)
    text = str(caught.value)
    assert f"127.0.0.1:{closed_port}" in text and "3 connection failures in a row" in text
    assert "refused" in text.lower() or "connect" in text.lower()


def test_a_failing_greeting_retries_then_stops_the_run(capture, smtp_settings):
    """A server that always answers 421 yields "retry" for the first send, then DeliveryError."""
    capture.add_fault(Fault("connect", 421, times=None))

    async def main():
        async with SmtpTransport(smtp_settings(concurrency=1, max_consecutive_connection_errors=5)) as t:
            first = await t.send(SENDER, TO, MESSAGE)
            with pytest.raises(DeliveryError) as caught:
                await t.send(SENDER, TO, MESSAGE)
            with pytest.raises(DeliveryError):  # the transport stays stopped
                await t.send(SENDER, TO, MESSAGE)
            return first, caught.value

    first, error = asyncio.run(main())
    assert (first.status, first.code) == ("retry", 421)
    assert error.smtp_code == 421 and "421" in str(error)
    assert capture.connections == 5


def test_connections_are_reused_up_to_concurrency(capture, smtp_settings):
    """Forty messages over three connections open exactly three, without a needless RSET or NOOP."""
    outcomes = send_all(smtp_settings(concurrency=3), 40)
    assert {o.status for o in outcomes} == {"sent"}
    assert capture.connections == 3
    assert len(capture.messages) == 40
    assert capture.count("RSET") == 0 and capture.count("NOOP") == 0
    assert capture.count("QUIT") == 3


def test_connections_are_recycled_after_messages_per_connection(capture, smtp_settings):
    """With messages_per_connection=5, twelve messages on one connection use three sessions."""
    outcomes = send_all(smtp_settings(concurrency=1, messages_per_connection=5), 12)
    assert [o.status for o in outcomes] == ["sent"] * 12
    assert capture.connections == 3
    per_session = [sum(1 for n, c, _ in capture.commands if n == s and c == "DATA") for s in (1, 2, 3)]
    assert per_session == [5, 5, 2]


def test_idle_connections_are_recycled(capture, smtp_settings, timers):
    """A connection idle longer than idle_seconds is closed and a new one opened on next use."""
    async def main():
        async with SmtpTransport(smtp_settings(concurrency=1, idle_seconds=0.2), timers=timers) as transport:
            await transport.send(SENDER, TO, MESSAGE)
            timers.advance(0.15)
            await transport.send(SENDER, TO, MESSAGE)
            timers.advance(0.35)
            await transport.send(SENDER, TO, MESSAGE)
    asyncio.run(main())
    assert capture.connections == 2 and len(capture.messages) == 3


def test_rset_follows_an_aborted_transaction(capture, smtp_settings):
    """After a refused transaction the connection is reset with RSET before the next MAIL."""
    capture.add_fault(Fault("rcpt", 550))
    outcomes = send_all(smtp_settings(concurrency=1), 2)
    assert [o.status for o in outcomes] == ["failed", "sent"]
    verbs = [c for _, c, _ in capture.commands if c in ("MAIL", "RCPT", "RSET", "DATA")]
    assert verbs == ["MAIL", "RCPT", "RSET", "MAIL", "RCPT", "DATA"]


def test_bare_line_feeds_are_sent_as_crlf_and_dots_are_stuffed(capture, smtp_settings):
    """Bytes with LF or CR line endings go out with CRLF; a line starting with a dot survives."""
    send_one(smtp_settings(), message=b"Subject: lf\n\n.starts with a dot\rlast line")
    assert capture.messages[0].data == b"Subject: lf\r\n\r\n.starts with a dot\r\nlast line\r\n"


def test_invalid_envelope_addresses_raise_message_error(capture, smtp_settings):
    """A recipient with CR/LF is refused before anything reaches the server."""
    with pytest.raises(MessageError):
        send_one(smtp_settings(), recipients=["a@contoso.example\r\nRCPT TO:<x@evil.example>"])
    assert capture.connections == 0


def test_idn_recipients_go_out_in_punycode(capture, smtp_settings):
    """An internationalized domain is sent in punycode; refusals name the address as the caller wrote it."""
    capture.add_fault(Fault("rcpt", 550, recipient="gone@xn--mnchen-3ya.de"))
    outcome = send_one(smtp_settings(), recipients=["kunde@bücher.example", "gone@münchen.de"])
    assert capture.messages[0].recipients == ("kunde@xn--bcher-kva.example",)
    assert list(outcome.refused) == ["gone@münchen.de"]


def test_duplicate_recipients_get_one_rcpt(capture, smtp_settings):
    """An address listed twice (To and Cc) is given to the server once."""
    send_one(smtp_settings(), recipients=["a@contoso.example", "b@contoso.example", "a@contoso.example"])
    assert capture.messages[0].recipients == ("a@contoso.example", "b@contoso.example")


def test_auth_uses_username_and_password(smtp_settings, tls):
    """AUTH logs in with smtp.username and the password passed in, over STARTTLS."""
    with CaptureServer(starttls=tls.good, credentials=("billing", "s3cret")) as server:
        settings = smtp_settings(port=server.port, tls="starttls", ca_file=str(tls.ca_file),
                                 username="billing")
        assert send_one(settings, password="s3cret").status == "sent"
        assert ("AUTH", "billing") in [(c, a) for _, c, a in server.commands]


def test_wrong_credentials_stop_the_run(smtp_settings, tls):
    """A refused AUTH is a DeliveryError: retrying every message with a bad password helps no one."""
    with CaptureServer(starttls=tls.good, credentials=("billing", "s3cret")) as server:
        settings = smtp_settings(port=server.port, tls="starttls", ca_file=str(tls.ca_file),
                                 username="billing")
        with pytest.raises(DeliveryError, match="AUTH refused"):
            send_one(settings, password="wrong")
        assert server.count("MAIL") == 0


def test_starttls_with_a_trusted_certificate_succeeds(smtp_settings, tls):
    """STARTTLS to a server whose certificate the CA file vouches for delivers over TLS."""
    with CaptureServer(starttls=tls.good) as server:
        settings = smtp_settings(port=server.port, tls="starttls", ca_file=str(tls.ca_file))
        assert send_one(settings).status == "sent"
        verbs = [c for _, c, _ in server.commands]
        assert verbs.index("STARTTLS") < verbs.index("MAIL")


def test_implicit_tls_with_a_trusted_certificate_succeeds(smtp_settings, tls):
    """Implicit TLS (SMTPS) to a trusted server delivers."""
    with CaptureServer(implicit_tls=tls.good) as server:
        settings = smtp_settings(port=server.port, tls="implicit", ca_file=str(tls.ca_file))
        assert send_one(settings).status == "sent"
        assert len(server.messages) == 1


@pytest.mark.parametrize("certificate", ["untrusted", "wrong_host"])
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_untrusted_or_misnamed_certificates_fail_closed(smtp_settings, tls, certificate, mode):
    """A certificate from an unknown CA or for another host stops delivery; nothing goes in clear."""
    context = getattr(tls, certificate)
    kwargs = {"starttls": context} if mode == "starttls" else {"implicit_tls": context}
    with CaptureServer(**kwargs) as server:
        settings = smtp_settings(port=server.port, tls=mode, ca_file=str(tls.ca_file))
        with pytest.raises(DeliveryError, match="TLS .* failed, not sending in plain text") as caught:
            send_all(settings, 3)
        assert "certificate" in str(caught.value).lower()
        assert server.count("MAIL") == 0 and server.messages == []


def test_a_server_without_starttls_fails_closed(capture, smtp_settings):
    """Under tls="starttls" a server that offers no STARTTLS is an error, never plain text."""
    with pytest.raises(DeliveryError, match="STARTTLS"):
        send_one(smtp_settings(tls="starttls"))
    assert capture.count("MAIL") == 0 and capture.messages == []


def test_plain_text_to_a_remote_host_is_refused_up_front():
    """tls="none" to a non-loopback host is a SettingsError before any connection is tried."""
    with pytest.raises(SettingsError, match="allow_plaintext_remote"):
        SmtpTransport(SmtpSettings(host="smtp.example.com", tls="none"))
    SmtpTransport(SmtpSettings(host="smtp.example.com", tls="none", allow_plaintext_remote=True))
    SmtpTransport(SmtpSettings(host="localhost", tls="none"))
    SmtpTransport(SmtpSettings(host="::1", tls="none"))


@pytest.mark.parametrize("settings, password, message", [
    (dict(username="billing"), None, "DUNNING_SMTP__PASSWORD"),
    (dict(), "s3cret", "smtp.username"),
    (dict(tls="starttls", ca_file="/nonexistent/ca.pem"), None, "smtp.ca_file"),
])
def test_conflicting_settings_are_refused_up_front(settings, password, message):
    """A username without password, a password without username or a missing CA file is a SettingsError."""
    with pytest.raises(SettingsError, match=message):
        SmtpTransport(SmtpSettings(**settings), password=password)


def test_a_slow_reply_to_mail_reconnects_and_delivers_once(capture, smtp_settings, timers):
    """MAIL answered later than command_timeout counts as a lost connection: reconnect, deliver once."""
    late = Fault("mail", 250, "OK", held=True)
    capture.add_fault(late)
    outcome = send_late(smtp_settings(concurrency=1, command_timeout=0.3), timers, (late, 0.31, False))
    assert outcome.status == "sent"
    assert capture.connections == 2 and len(capture.messages) == 1


def test_a_slow_reply_to_rcpt_is_retry(capture, smtp_settings, timers):
    """RCPT answered later than command_timeout is "retry": MAIL was accepted, nothing handed over."""
    late = Fault("rcpt", 250, "OK", held=True)
    capture.add_fault(late)
    outcome = send_late(smtp_settings(concurrency=1, command_timeout=0.3), timers, (late, 0.31, False))
    assert (outcome.status, outcome.code) == ("retry", None)
    assert "Timed out" in outcome.reply
    assert capture.messages == [] and capture.count("DATA") == 0 and capture.connections == 1


def test_command_timeout_applies_to_each_reply_not_to_the_whole_message(capture, smtp_settings, timers):
    """Replies each within command_timeout are waited for even when together they take longer."""
    mail, rcpt = Fault("mail", 250, "OK", held=True), Fault("rcpt", 250, "OK", held=True)
    capture.add_fault(mail)
    capture.add_fault(rcpt)
    outcome = send_late(smtp_settings(concurrency=1, command_timeout=0.5), timers, (mail, 0.3, True), (rcpt, 0.3, True))
    assert outcome.status == "sent" and timers.now > 0.5
    assert capture.connections == 1


def test_the_final_reply_gets_data_timeout_not_command_timeout(capture, smtp_settings, timers):
    """The reply after the final dot may take longer than command_timeout, up to data_timeout."""
    late = Fault("data", 250, "OK", held=True)
    capture.add_fault(late)
    outcome = send_late(smtp_settings(concurrency=1, command_timeout=0.3, data_timeout=3.0), timers, (late, 0.6, True))
    assert outcome.status == "sent"


def test_reply_timeouts_never_cancel_anything_else(capture, smtp_settings, timers):
    """After a send, the task that made it can wait past command_timeout without being cancelled."""
    async def main():
        settings = smtp_settings(concurrency=1, command_timeout=0.2, data_timeout=0.2)
        async with SmtpTransport(settings, timers=timers) as transport:
            first = await transport.send(SENDER, TO, MESSAGE)
            timers.advance(0.5)  # the connection's timer comes due, with nothing waiting
            await settle()
            second = await transport.send(SENDER, TO, MESSAGE)
            timers.advance(0.5)
            await settle()
            return first, second
    assert [o.status for o in asyncio.run(main())] == ["sent", "sent"]
    assert capture.connections == 1


def test_cancelling_a_send_propagates_and_leaves_the_transport_usable(capture, smtp_settings, timers):
    """A send cancelled while it waits for a reply raises CancelledError, not an outcome; later ones work."""
    late = Fault("rcpt", 250, "OK", held=True)
    capture.add_fault(late)

    async def main():
        async with SmtpTransport(smtp_settings(concurrency=1, command_timeout=0.3), timers=timers) as transport:
            slow = asyncio.create_task(transport.send(SENDER, TO, MESSAGE))
            waiting = asyncio.create_task(transport.send(SENDER, TO, MESSAGE))
            await reached(late)
            slow.cancel()
            waiting.cancel()
            for task in (slow, waiting):
                with pytest.raises(asyncio.CancelledError):
                    await task
            timers.advance(0.4)  # past command_timeout: the timer must not strike again
            await settle()
            return await transport.send(SENDER, TO, MESSAGE)
    assert asyncio.run(main()).status == "sent"
    assert len(capture.messages) == 1


def test_a_send_cancelled_as_a_connection_is_handed_to_it_passes_the_connection_on():
    """A connection released to a waiting send that is being cancelled goes to the next waiting send."""
    from dunning.delivery.pool import Pool

    async def main():
        loop = asyncio.get_running_loop()
        connection = object()
        pool = Pool(loop, [connection])  # type: ignore[list-item]
        held = await pool.get()
        first = asyncio.create_task(pool.get())
        second = asyncio.create_task(pool.get())
        await asyncio.sleep(0)  # both wait now
        pool.put(held)          # handed to the first waiter...
        first.cancel()          # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await first
        return await asyncio.wait_for(second, 1.0) is connection
    assert asyncio.run(main())


def test_the_pool_counts_only_waiting_sends_that_are_still_waiting():
    """A cancelled send ahead of a waiting one does not hide it; once none waits, none is counted."""
    from dunning.delivery.pool import Pool

    async def main() -> list[bool]:
        loop = asyncio.get_running_loop()
        connection = object()
        pool = Pool(loop, [connection])  # type: ignore[list-item]
        seen = [pool.waiting]
        held = await pool.get()
        gone, waiting = asyncio.create_task(pool.get()), asyncio.create_task(pool.get())
        await asyncio.sleep(0)  # both wait now
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        seen.append(pool.waiting)  # the cancelled one first, then one still waiting
        pool.put(held)
        assert await asyncio.wait_for(waiting, 1.0) is connection
        seen.append(pool.waiting)
        return seen
    assert asyncio.run(main()) == [False, True, False]


def test_messages_from_build_message_keep_their_leading_dots(capture, smtp_settings, make_email):
    """Body lines starting with a dot (7bit or quoted-printable) arrive intact; dot-safe ones unchanged."""
    from datetime import datetime

    from dunning.delivery.mime import build_message

    def build(text: str) -> bytes:
        return build_message(make_email(subject="s", html="<p>x</p>\n", text=text),
                             from_address=SENDER, from_name="Billing", reply_to=None, to=TO, cc=[],
                             message_id="<1@example.com>", date=datetime.now(UTC))
    messages = [build(".one\n..two\nthree.\n"), build("é.\n.là\n" * 3), build("no dots at line starts\n")]
    for message in messages:
        assert send_one(smtp_settings(), message=message).status == "sent"
    assert [m.data for m in capture.messages] == messages


class Silent:
    """A protocol stand-in whose reply never comes."""

    async def read_response(self, timeout=None):
        await asyncio.get_running_loop().create_future()


def test_a_reply_timeout_leaves_the_task_without_pending_cancellation(timers):
    """A reply that times out raises SMTPReadTimeoutError and leaves the task's cancel count as it was."""
    from aiosmtplib import SMTPReadTimeoutError

    from dunning.delivery.timer import ReplyTimer

    async def main():
        timer = ReplyTimer(timers)
        asyncio.get_running_loop().call_soon(timers.advance, 0.05)  # once the reply below is awaited
        with pytest.raises(SMTPReadTimeoutError):
            await timer.reply(Silent(), 0.05)
        await settle()  # a leftover cancellation would strike here
        return asyncio.current_task().cancelling()
    assert asyncio.run(main()) == 0


def test_an_outside_cancellation_at_the_deadline_stays_a_cancellation(timers):
    """When the task is cancelled from outside just as its reply times out, CancelledError wins."""
    from dunning.delivery.timer import ReplyTimer

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(ReplyTimer(timers).reply(Silent(), 0.05))
        await asyncio.sleep(0)  # the task now waits for its reply
        timers.advance(0.1)  # past the deadline: the timer runs in the loop's next turn...
        loop.call_soon(task.cancel)  # ...then the outside cancel, right after the timer
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(main())


def test_with_pipelining_mail_rcpt_and_data_go_before_any_reply():
    """A server announcing PIPELINING gets MAIL, every RCPT and DATA before it has to answer any of them."""
    received: list[bytes] = []

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 scripted ESMTP\r\n")
        await reader.readline()  # EHLO
        writer.write(b"250-scripted\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n")
        commands = b""
        while not commands.endswith(b"DATA\r\n"):  # no reply until DATA: a client waiting would time out
            commands += await reader.read(4096)
        received.append(commands)
        writer.write(b"250 sender ok\r\n250 rcpt ok\r\n250 rcpt ok\r\n354 go ahead\r\n")
        received.append(await reader.readuntil(b"\r\n.\r\n"))
        writer.write(b"250 2.0.0 queued\r\n")
        await reader.readline()  # QUIT
        writer.write(b"221 bye\r\n")
        writer.close()

    async def main() -> Outcome:
        server = await asyncio.start_server(session, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = SmtpSettings(host="127.0.0.1", port=port, command_timeout=2.0, concurrency=1)
        async with server, SmtpTransport(settings) as transport:
            return await transport.send(SENDER, ["a@contoso.example", "b@contoso.example"], MESSAGE)

    assert asyncio.run(main()) == Outcome("sent", 250, "2.0.0 queued", {}, ("a@contoso.example", "b@contoso.example"))
    assert received[0] == (f"MAIL FROM:<{SENDER}> SIZE={len(MESSAGE) + 4}\r\n".encode()
                           + b"RCPT TO:<a@contoso.example>\r\nRCPT TO:<b@contoso.example>\r\nDATA\r\n")
    assert received[1] == MESSAGE.replace(b"\r\n.leading", b"\r\n..leading") + b".\r\n"


SECOND = MESSAGE.replace(b"<1@example.com>", b"<2@example.com>")
GREETING, EHLO = b"220 scripted ESMTP\r\n", b"250-scripted\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n"
ENVELOPE = b"250 sender ok\r\n250 rcpt ok\r\n354 go ahead\r\n"


async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A scripted server's greeting, and its reply to EHLO (PIPELINING, SIZE)."""
    writer.write(GREETING)
    await reader.readline()  # EHLO
    writer.write(EHLO)


@pytest.mark.parametrize("reply, stage", [(b"354 go ahead", "MAIL"), (b"250 queued", "DATA")])
def test_a_reply_that_fits_another_command_drops_the_session_with_nothing_handed_over(reply, stage):
    """354 to MAIL or 250 to DATA answers some other command: the session is dropped before any data goes,
    and the send starts again on a new connection (out of step at MAIL) or is retried (at DATA)."""
    after: list[bytes] = []
    sessions = 0

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sessions
        sessions += 1
        await greet(reader, writer)
        await reader.readuntil(b"DATA\r\n")
        replies = {"MAIL": [reply], "DATA": [b"250 sender ok", b"250 rcpt ok", reply]}[stage]
        writer.write(b"".join(line + b"\r\n" for line in replies))
        with contextlib.suppress(ConnectionError):
            after.append(await reader.read())  # what comes before the client closes
        writer.close()

    async def main() -> Outcome:
        server = await asyncio.start_server(session, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # No outage to ride out: three connections, then "retry" (tests/delivery/test_reconnect.py waits).
        settings = SmtpSettings(host="127.0.0.1", port=port, command_timeout=2.0, concurrency=1,
                                max_consecutive_connection_errors=10, reconnect_seconds=0)
        async with server, SmtpTransport(settings) as transport:
            return await transport.send(SENDER, TO, MESSAGE)

    outcome = asyncio.run(main())
    assert f"in reply to {stage}" in outcome.reply and outcome.status == "retry"
    assert sessions == (3 if stage == "MAIL" else 1)
    assert all(b"Subject" not in data for data in after)


def send_two_over_one_connection(first_session, later_session=None) -> tuple[list[Outcome], int]:
    """MESSAGE then SECOND, sent at once through one connection to a scripted server: the outcomes, and
    how many connections the server saw. first_session scripts the first connection after EHLO;
    later ones accept every message (later_session, if given, is called with what they received)."""
    sessions = 0

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sessions
        sessions += 1
        await greet(reader, writer)
        if sessions == 1:
            await first_session(reader, writer)
        else:
            while (line := await reader.readline()) and line != b"QUIT\r\n":
                if line == b"DATA\r\n":
                    writer.write(ENVELOPE)
                    received = await reader.readuntil(b"\r\n.\r\n")
                    if later_session:
                        later_session(received)
                    writer.write(b"250 2.0.0 queued later\r\n")
            writer.write(b"221 bye\r\n")
        writer.close()

    async def main() -> list[Outcome]:
        server = await asyncio.start_server(session, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = SmtpSettings(host="127.0.0.1", port=port, command_timeout=2.0, data_timeout=2.0, concurrency=1)
        async with server, SmtpTransport(settings) as transport:
            return list(await asyncio.gather(transport.send(SENDER, TO, MESSAGE), transport.send(SENDER, TO, SECOND)))

    outcomes = asyncio.run(main())
    return outcomes, sessions


async def _read_until_second_data(reader: asyncio.StreamReader) -> bytes:
    """The first message's data and the second message's commands, with no reply to the final dot yet."""
    received = b""
    while not received.endswith(b"DATA\r\n"):
        chunk = await reader.read(65536)
        assert chunk, "the client stopped writing: it waits for the final reply before the next MAIL"
        received += chunk
    return received


def test_with_pipelining_the_next_mail_follows_the_message_data_before_its_final_reply():
    """A waiting send's MAIL, RCPT and DATA follow the message data before the server answers the final dot."""
    received: list[bytes] = []

    async def first(reader, writer) -> None:
        await reader.readuntil(b"DATA\r\n")
        writer.write(ENVELOPE)
        received.append(await _read_until_second_data(reader))
        writer.write(b"250 2.0.0 first queued\r\n" + ENVELOPE)
        received.append(await reader.readuntil(b"\r\n.\r\n"))
        writer.write(b"250 2.0.0 second queued\r\n")
        await reader.readline()  # QUIT
        writer.write(b"221 bye\r\n")

    outcomes, sessions = send_two_over_one_connection(first)
    assert [(o.status, o.reply) for o in outcomes] == [("sent", "2.0.0 first queued"), ("sent", "2.0.0 second queued")]
    assert sessions == 1
    wire = MESSAGE.replace(b"\r\n.leading", b"\r\n..leading") + b".\r\n"
    assert received[0] == wire + f"MAIL FROM:<{SENDER}> SIZE={len(wire)}\r\nRCPT TO:<{TO[0]}>\r\nDATA\r\n".encode()
    assert received[1] == wire.replace(b"<1@example.com>", b"<2@example.com>")


@pytest.mark.parametrize("together", [True, False], ids=["with the final reply", "after it"])
@pytest.mark.parametrize("envelope", [ENVELOPE, b"354 go ahead\r\n"], ids=["in step", "354 to MAIL"])
def test_the_replies_after_a_final_one_decide_whether_it_counts(together, envelope):
    """The next send's replies judge the final reply before them, whether they come with it (the send before
    judges them for the next one) or later (the next one reads them and says): in step, both messages are
    sent on one connection; out of step, the first may have read another command's reply (unknown) and the
    next, nothing handed over, starts again on a new connection."""
    later: list[bytes] = []

    async def first(reader, writer) -> None:
        await reader.readuntil(b"DATA\r\n")
        writer.write(ENVELOPE)
        await _read_until_second_data(reader)
        writer.write(b"250 2.0.0 first queued\r\n")
        if not together:
            await writer.drain()
            await asyncio.sleep(0.05)  # the client reads the final reply alone, and waits
        writer.write(envelope)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            later.append(await reader.readuntil(b"\r\n.\r\n"))
            writer.write(b"250 2.0.0 second queued\r\n")
            await reader.readline()  # QUIT
            writer.write(b"221 bye\r\n")

    outcomes, sessions = send_two_over_one_connection(first, later.append)
    if envelope == ENVELOPE:
        assert [(o.status, o.reply) for o in outcomes] == [("sent", "2.0.0 first queued"),
                                                           ("sent", "2.0.0 second queued")]
        assert sessions == 1
    else:
        assert outcomes[0].status == "unknown" and "out of step" in outcomes[0].reply
        assert (outcomes[1].status, outcomes[1].reply, sessions) == ("sent", "2.0.0 queued later", 2)
    assert len(later) == 1 and b"<2@example.com>" in later[0]


@pytest.mark.parametrize("final", [b"421 4.3.2 shutting down\r\n", b""], ids=["421", "lost"])
def test_a_session_ending_at_the_final_dot_leaves_the_next_message_to_a_new_connection(final):
    """The first message gets its outcome (retry on 421, unknown when the reply is lost); the next one,
    whose commands went before the end, was never handed over: it is sent once, on a new connection."""
    later: list[bytes] = []

    async def first(reader, writer) -> None:
        await reader.readuntil(b"DATA\r\n")
        writer.write(ENVELOPE)
        await _read_until_second_data(reader)
        writer.write(final)  # and the session ends

    outcomes, sessions = send_two_over_one_connection(first, later.append)
    assert [o.status for o in outcomes] == (["retry", "sent"] if final else ["unknown", "sent"])
    assert outcomes[1].reply == "2.0.0 queued later" and sessions == 2
    assert len(later) == 1 and b"<2@example.com>" in later[0]


def test_a_session_ending_after_answering_the_next_commands_sends_neither_message():
    """421 to the final dot, the next MAIL, RCPT and DATA still answered, then the end: the first message is
    retried, and the next one too, its data never written (the session it opened DATA on is gone)."""
    async def first(reader, writer) -> None:
        await reader.readuntil(b"DATA\r\n")
        writer.write(ENVELOPE)
        await _read_until_second_data(reader)
        writer.write(b"421 4.3.2 shutting down\r\n" + ENVELOPE)

    outcomes, sessions = send_two_over_one_connection(first)
    assert [(o.status, o.code) for o in outcomes] == [("retry", 421), ("retry", None)]
    assert "before the message was sent" in outcomes[1].reply and sessions == 1


def test_a_chained_send_cancelled_before_its_final_reply_never_lends_that_reply_to_the_next():
    """Cancelled while its final reply is due, a send closes the session; the next send starts over."""
    later: list[bytes] = []
    both_written, first_cancelled = asyncio.Event(), asyncio.Event()

    async def first(reader, writer) -> None:
        await reader.readuntil(b"DATA\r\n")
        writer.write(ENVELOPE)
        await _read_until_second_data(reader)
        both_written.set()
        await first_cancelled.wait()  # the first send is cancelled meanwhile
        writer.write(b"250 2.0.0 first queued\r\n" + ENVELOPE)
        with contextlib.suppress(ConnectionError):
            await reader.read()

    async def main() -> tuple[list, int]:
        sessions = 0

        async def session(reader, writer) -> None:
            nonlocal sessions
            sessions += 1
            await greet(reader, writer)
            if sessions == 1:
                await first(reader, writer)
            else:
                await reader.readuntil(b"DATA\r\n")
                writer.write(ENVELOPE)
                later.append(await reader.readuntil(b"\r\n.\r\n"))
                writer.write(b"250 2.0.0 queued later\r\n")
                await reader.readline()
                writer.write(b"221 bye\r\n")
            writer.close()

        server = await asyncio.start_server(session, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = SmtpSettings(host="127.0.0.1", port=port, command_timeout=2.0, data_timeout=2.0, concurrency=1)
        async with server, SmtpTransport(settings) as transport:
            first_send = asyncio.create_task(transport.send(SENDER, TO, MESSAGE))
            second_send = asyncio.create_task(transport.send(SENDER, TO, SECOND))
            await both_written.wait()
            first_send.cancel()
            [cancelled] = await asyncio.gather(first_send, return_exceptions=True)
            first_cancelled.set()
            results = [cancelled, await second_send]
        return results, sessions

    (cancelled, outcome), sessions = asyncio.run(main())
    assert isinstance(cancelled, asyncio.CancelledError)
    assert (outcome.status, outcome.reply, sessions) == ("sent", "2.0.0 queued later", 2)
    assert len(later) == 1 and b"<2@example.com>" in later[0]


def test_after_a_refused_mail_the_connection_carries_the_next_message(capture, smtp_settings):
    """A refused MAIL (its RCPT and DATA replies read too when pipelined) leaves the connection usable."""
    capture.add_fault(Fault("mail", 451, "4.3.0 Try later"))

    async def main() -> list[Outcome]:
        async with SmtpTransport(smtp_settings(concurrency=1)) as transport:
            return [await transport.send(SENDER, TO, MESSAGE) for _ in range(2)]

    assert [o.status for o in asyncio.run(main())] == ["retry", "sent"]
    assert capture.connections == 1 and len(capture.messages) == 1


EIGHT_BIT = MESSAGE.replace(b"Your payment failed.", "Votre paiement a échoué.".encode())


def send_eight_bit(settings: SmtpSettings, seven_bit=None) -> tuple[Outcome, bool]:
    """Send EIGHT_BIT once; the outcome, and whether the transport would build 8-bit messages next."""
    async def main() -> tuple[Outcome, bool]:
        async with SmtpTransport(settings) as transport:
            outcome = await transport.send(SENDER, TO, EIGHT_BIT, seven_bit=seven_bit)
            return outcome, transport.eight_bit
    return asyncio.run(main())


def test_an_eight_bit_message_goes_with_body_8bitmime(capture, smtp_settings):
    """8-bit bytes go as they are, announced with BODY=8BITMIME, to a server that takes 8BITMIME."""
    assert send_eight_bit(smtp_settings()) == (Outcome("sent", 250, "2.0.0 OK: captured", {}, tuple(TO)), True)
    [message] = capture.messages
    assert "BODY=8BITMIME" in message.mail_options and message.data == EIGHT_BIT


def test_an_ascii_message_goes_without_a_body_parameter(capture, smtp_settings):
    """A 7-bit message does not claim BODY=8BITMIME."""
    assert send_one(smtp_settings()).status == "sent"
    assert not any(o.startswith("BODY") for o in capture.messages[0].mail_options)


@pytest.mark.parametrize("server_eight_bit, setting", [(False, True), (True, False)])
def test_without_8bitmime_the_seven_bit_form_is_sent(smtp_settings, server_eight_bit, setting):
    """When the server lacks 8BITMIME or smtp.eight_bit is off, seven_bit() is sent instead, plain 7-bit."""
    seven = MESSAGE.replace(b"Your payment failed.", b"Votre paiement a =C3=A9chou=C3=A9.")
    with CaptureServer(eight_bit=server_eight_bit) as server:
        settings = smtp_settings(port=server.port, eight_bit=setting)
        outcome, eight_bit_next = send_eight_bit(settings, seven_bit=lambda: seven)
        assert outcome.status == "sent" and eight_bit_next is False
        [message] = server.messages
    assert message.data == seven and not any(o.startswith("BODY") for o in message.mail_options)


def test_an_eight_bit_message_with_no_seven_bit_form_fails_without_8bitmime(smtp_settings):
    """With no 7-bit form to fall back on, an 8-bit message to a server without 8BITMIME fails, unsent."""
    with CaptureServer(eight_bit=False) as server:
        outcome, _ = send_eight_bit(smtp_settings(port=server.port))
        assert outcome.status == "failed" and "8BITMIME" in outcome.reply
        assert server.messages == [] and server.count("MAIL") == 0


def test_ehlo_names_the_host_given_by_smtp_ehlo_name(capture, smtp_settings):
    """smtp.ehlo_name is the name the transport gives in EHLO; a name with a space or CR/LF is refused."""
    send_one(smtp_settings(concurrency=1, ehlo_name="billing.example.com"))
    assert [arg for _, command, arg in capture.commands if command == "EHLO"] == ["billing.example.com"]
    for bad in ("two words", "evil\r\nMAIL FROM:<x@y>"):
        with pytest.raises(ValueError):
            smtp_settings(ehlo_name=bad)
