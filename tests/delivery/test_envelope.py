"""The envelope's state machine: every reply judged against the stage it answers, without a server."""

from __future__ import annotations

import pytest
from aiosmtplib import SMTPServerDisconnected

from dunning.delivery.envelope import Envelope, Opened, Step, Verdict, judge
from dunning.delivery.outcome import Outcome
from dunning.delivery.replies import Desynchronized
from dunning.delivery.session import Reconnect

A, B = "a@contoso.example", "b@contoso.example"
MAIL = b"MAIL FROM:<billing@example.com>\r\n"


def envelope(*, pipelined: bool, recipients: tuple[str, ...] = (A, B)) -> Envelope:
    return Envelope("billing@example.com", list(recipients), pipelined)


def answers(machine: Envelope, *codes: int) -> list[Step]:
    """The steps after each reply code, in order (the reply text is the code's own)."""
    return [machine.answer(code, f"text {code}") for code in codes]


@pytest.mark.parametrize("stage, code, verdict", [
    ("MAIL", 250, Verdict.ACCEPTED), ("MAIL", 251, Verdict.OUT_OF_STEP), ("MAIL", 354, Verdict.OUT_OF_STEP),
    ("RCPT", 250, Verdict.ACCEPTED), ("RCPT", 251, Verdict.ACCEPTED), ("RCPT", 354, Verdict.OUT_OF_STEP),
    ("DATA", 354, Verdict.ACCEPTED), ("DATA", 250, Verdict.OUT_OF_STEP), ("DATA", 221, Verdict.OUT_OF_STEP),
    ("MAIL", 421, Verdict.CLOSING), ("RCPT", 421, Verdict.CLOSING), ("DATA", 421, Verdict.CLOSING),
    ("MAIL", 451, Verdict.REFUSED), ("RCPT", 550, Verdict.REFUSED), ("DATA", 554, Verdict.REFUSED),
])
def test_a_reply_is_judged_against_the_stage_it_answers(stage, code, verdict):
    """The same code can accept one command and be out of step for another (250 fits MAIL, not DATA)."""
    assert judge(stage, code) is verdict


def test_without_pipelining_each_command_follows_the_reply_before():
    """MAIL alone first; each accepted reply brings the next command; 354 opens DATA for every recipient."""
    machine = envelope(pipelined=False)
    assert machine.opening() == Step(write=MAIL)
    steps = answers(machine, 250, 251, 250, 354)
    assert [s.write for s in steps] == [f"RCPT TO:<{A}>\r\n".encode(), f"RCPT TO:<{B}>\r\n".encode(), b"DATA\r\n", None]
    assert steps[-1] == Step(result=Opened({}, (A, B)))


def test_with_pipelining_everything_is_written_at_once_and_each_reply_read_in_turn():
    """MAIL, RCPT and DATA go in one write that asks for four replies; the replies then write nothing."""
    machine = Envelope("billing@example.com", [A, B], True, size=1234, eight_bit=True)
    opening = machine.opening()
    assert opening.asks == 4
    assert opening.write == (b"MAIL FROM:<billing@example.com> SIZE=1234 BODY=8BITMIME\r\n"
                             + f"RCPT TO:<{A}>\r\nRCPT TO:<{B}>\r\n".encode() + b"DATA\r\n")
    steps = answers(machine, 250, 250, 550, 354)
    assert [s.write for s in steps] == [None, None, None, None]
    assert steps[-1].result == Opened({B: (550, "text 550")}, (A,))


def test_a_354_in_reply_to_mail_is_out_of_step_and_reconnects():
    """A reply that fits no MAIL reply marks the session out of step, drops it, and starts again elsewhere."""
    [step] = answers(envelope(pipelined=True), 354)
    assert isinstance(step.result, Reconnect) and step.result.code == 354
    assert step.drop and step.out_of_step == "354 text 354 in reply to MAIL"


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_250_in_reply_to_data_is_out_of_step_and_retried(pipelined):
    """250 where DATA waits for 354 answers another command: dropped, retried, nothing handed over."""
    step = answers(envelope(pipelined=pipelined, recipients=(A,)), 250, 250, 250)[-1]
    assert step.out_of_step == "250 text 250 in reply to DATA" and step.drop
    assert step.result == Outcome("retry", None, "connection out of step after MAIL, before the message was "
                                  "sent: 250 text 250 in reply to DATA")


def test_a_354_in_reply_to_rcpt_is_out_of_step():
    """354 where RCPT waits for 250 or 251 is out of step, and the refusals so far stay listed."""
    step = answers(envelope(pipelined=True), 250, 550, 354)[-1]
    assert step.out_of_step == "354 text 354 in reply to RCPT"
    assert isinstance(step.result, Outcome) and step.result.refused == {A: (550, "text 550")}


def test_after_a_refused_pipelined_mail_the_other_replies_must_be_refusals():
    """Refusals to RCPT and DATA after a refused MAIL are read and the MAIL refusal stands; a 250 among them
    means the refusal may have answered another command: retried."""
    machine = envelope(pipelined=True)
    assert [s.result for s in answers(machine, 451, 503, 503)] == [None, None, None]
    assert machine.answer(503, "no valid recipients").result == Outcome("retry", 451, "text 451")
    step = answers(envelope(pipelined=True), 550, 250)[-1]
    assert step.out_of_step == "250 in reply to RCPT or DATA after a refused MAIL" and step.drop
    assert step.result == Outcome("retry", 550, "MAIL 550 text 550, then the replies went out of step")


def test_a_refused_mail_without_pipelining_ends_at_once():
    """Without pipelining nothing else was written: the MAIL refusal is the outcome."""
    assert answers(envelope(pipelined=False), 550)[0] == Step(result=Outcome("failed", 550, "text 550"))


def test_every_recipient_refused_ends_before_data_unless_it_was_pipelined():
    """Without pipelining DATA is never written; pipelined, a 354 opened for no one drops the session."""
    plain = answers(envelope(pipelined=False), 250, 550, 452)[-1]
    assert plain.write is None and not plain.drop
    assert isinstance(plain.result, Outcome) and (plain.result.status, plain.result.code) == ("retry", 452)
    piped = answers(envelope(pipelined=True), 250, 550, 550, 354)[-1]
    assert piped.drop and isinstance(piped.result, Outcome) and piped.result.status == "failed"


def test_421_closes_at_rcpt_with_the_refusals_so_far():
    """421 to a RCPT is a retry that drops the session."""
    step = answers(envelope(pipelined=True), 250, 550, 421)[-1]
    assert step.drop and step.result == Outcome("retry", 421, "text 421", {A: (550, "text 550")})


def test_a_connection_lost_is_judged_by_the_stage_it_was_lost_at():
    """Lost before MAIL's reply: reconnect; after it: retry, the message not handed over."""
    lost = SMTPServerDisconnected("Connection lost")
    step = envelope(pipelined=False).lost(lost)
    assert isinstance(step.result, Reconnect) and step.result.reason == "connection lost before MAIL: Connection lost"
    machine = envelope(pipelined=False)
    machine.answer(250, "ok")
    assert machine.lost(Desynchronized("a reply no command asked for")).result == Outcome(
        "retry", None, "connection out of step after MAIL, before the message was sent: a reply no command asked for")
