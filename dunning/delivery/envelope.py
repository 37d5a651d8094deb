"""The envelope of one SMTP transaction (MAIL, RCPT, DATA) as a small state machine, without I/O.

Each reply is judged against the stage it answers: MAIL 250, RCPT 250 or 251, DATA 354 accept it; 421
refuses and ends the session; any other 4xx or 5xx refuses that command; any other code fits no
command, so the session is out of step: it is dropped, and the email is retried (nothing was handed
over yet). With PIPELINING, MAIL, every RCPT and DATA are written at once and the replies still come
one per command, in order; without, each command is written once the reply before it was judged.

After a refused MAIL, a pipelined session still owes the replies to RCPT and DATA (stage "SKIP"):
each must be a refusal (or a 354: DATA opened after all, and only closing ends it without a message);
anything else means the refusal may have answered another command, and the email is retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, NamedTuple

from dunning.delivery.outcome import Outcome, all_refused, by_code
from dunning.delivery.replies import Desynchronized
from dunning.delivery.session import Reconnect, describe

__all__ = ["Stage", "Verdict", "ACCEPTS", "judge", "Opened", "Step", "Envelope"]

Stage = Literal["MAIL", "RCPT", "DATA", "SKIP"]
ACCEPTS: dict[Stage, tuple[int, ...]] = {"MAIL": (250,), "RCPT": (250, 251), "DATA": (354,)}


class Verdict(Enum):
    """What a reply means for the command it answers."""

    ACCEPTED = "accepted"        # the code the stage waits for
    REFUSED = "refused"          # 4xx or 5xx: this command is refused
    CLOSING = "closing"          # 421: refused, and the server ends the session
    OUT_OF_STEP = "out of step"  # a code no reply to this command has: it answers another one


def judge(stage: Stage, code: int) -> Verdict:
    """The verdict of a reply code for the command of a stage."""
    if code in ACCEPTS.get(stage, ()):
        return Verdict.ACCEPTED
    if code == 421:
        return Verdict.CLOSING
    return Verdict.REFUSED if 400 <= code < 600 else Verdict.OUT_OF_STEP


class Opened(NamedTuple):
    """The server opened DATA: the message may go now, to the recipients accepted."""

    refused: dict[str, tuple[int, str]]
    accepted: tuple[str, ...]


class Step(NamedTuple):
    """What to do after a reply: write the next command (when not pipelined) and read on, or stop.

    A tuple: made several times per message, it costs less than a frozen dataclass."""

    write: bytes | None = None
    asks: int = 1  # how many replies the bytes written ask for
    result: Outcome | Opened | Reconnect | None = None  # the end of the envelope, if it ended
    drop: bool = False  # close the session: it ends, is out of step, or opened DATA for no recipient
    out_of_step: str | None = None  # why the session is out of step, to mark it so before it is dropped


_READ_ON = Step()
_WRITE_DATA = Step(write=b"DATA\r\n")


@dataclass(slots=True)
class Envelope:
    """Where one transaction's envelope stands: the stage the next reply answers, the refusals so far."""

    sender: str
    recipients: list[str]
    pipelined: bool
    size: int | None = None  # announced with SIZE= when the server takes it
    eight_bit: bool = False  # announced with BODY=8BITMIME
    stage: Stage = "MAIL"
    mail: Verdict | None = None  # the verdict of the reply to MAIL, once read
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    _answered: int = 0  # RCPT replies read (after a refused MAIL: replies skipped)
    _mail_reply: tuple[int, str] = (0, "")

    def opening(self) -> Step:
        """The first write: MAIL alone, or MAIL, every RCPT and DATA at once when pipelined."""
        # Addresses were validated by envelope_address (no control characters, no spaces): the
        # commands are written as they are.
        size = b" SIZE=%d" % self.size if self.size is not None else b""
        body = b" BODY=8BITMIME" if self.eight_bit else b""
        mail = b"MAIL FROM:<%s>%s%s\r\n" % (self.sender.encode(), size, body)
        if not self.pipelined:
            return Step(write=mail)
        rcpts = [b"RCPT TO:<%s>\r\n" % recipient.encode() for recipient in self.recipients]
        return Step(write=b"".join([mail, *rcpts, b"DATA\r\n"]), asks=len(rcpts) + 2)

    def answer(self, code: int, message: str) -> Step:
        """Judge a reply against the stage it answers, and move on."""
        if self.stage == "MAIL":
            return self._after_mail(code, message)
        if self.stage == "RCPT":
            return self._after_rcpt(code, message)
        if self.stage == "DATA":
            return self._after_data(code, message)
        return self._after_skipped(code)

    def lost(self, exc: BaseException) -> Step:
        """The connection failed, or was found out of step, while this stage's reply was due."""
        if self.stage == "MAIL":
            return Step(result=Reconnect(f"connection lost before MAIL: {describe(exc)}"))
        if self.stage == "SKIP":
            return Step(result=self._mail_then_out_of_step(), drop=True)
        what = "out of step" if isinstance(exc, Desynchronized) else "lost"
        return Step(result=Outcome("retry", None, f"connection {what} after MAIL, before the message was sent: "
                                   f"{describe(exc)}", self.refused), drop=True)

    def _after_mail(self, code: int, message: str) -> Step:
        verdict = judge("MAIL", code)
        if verdict is Verdict.CLOSING:
            return Step(result=Reconnect(f"MAIL {code} {message}", code))
        if verdict is Verdict.OUT_OF_STEP:
            return Step(result=Reconnect(f"desynchronized: {code} {message} in reply to MAIL", code), drop=True,
                        out_of_step=f"{code} {message} in reply to MAIL")
        self.mail = verdict
        if verdict is Verdict.REFUSED:
            if not self.pipelined:
                return Step(result=by_code(code, message))
            self.stage, self._mail_reply = "SKIP", (code, message)
            return _READ_ON
        self.stage = "RCPT"
        return _READ_ON if self.pipelined else Step(write=self._rcpt(0))

    def _after_rcpt(self, code: int, message: str) -> Step:
        recipient = self.recipients[self._answered]
        self._answered += 1
        verdict = judge("RCPT", code)
        if verdict is Verdict.CLOSING:
            return Step(result=by_code(code, message, self.refused), drop=True)
        if verdict is Verdict.OUT_OF_STEP:
            return self._out_of_step(f"{code} {message} in reply to RCPT")
        if verdict is Verdict.REFUSED:
            self.refused[recipient] = (code, message)
        if self._answered < len(self.recipients):
            return _READ_ON if self.pipelined else Step(write=self._rcpt(self._answered))
        if self._all_refused and not self.pipelined:
            return Step(result=all_refused(self.refused))
        self.stage = "DATA"
        return _READ_ON if self.pipelined else _WRITE_DATA

    def _after_data(self, code: int, message: str) -> Step:
        verdict = judge("DATA", code)
        if verdict is Verdict.OUT_OF_STEP:
            return self._out_of_step(f"{code} {message} in reply to DATA")
        if self._all_refused:  # a server that opens DATA with no recipient: nothing can be delivered
            return Step(result=all_refused(self.refused), drop=verdict is Verdict.ACCEPTED)
        if verdict is Verdict.ACCEPTED:
            refused = self.refused
            accepted = tuple(r for r in self.recipients if r not in refused) if refused else tuple(self.recipients)
            return Step(result=Opened(refused, accepted))
        return Step(result=by_code(code, message, self.refused), drop=verdict is Verdict.CLOSING)

    def _after_skipped(self, code: int) -> Step:
        if code == 354:  # DATA opened after all: only closing ends it without a message
            return Step(result=by_code(*self._mail_reply), drop=True)
        if not 400 <= code < 600:
            return Step(result=self._mail_then_out_of_step(), drop=True,
                        out_of_step=f"{code} in reply to RCPT or DATA after a refused MAIL")
        self._answered += 1
        if self._answered <= len(self.recipients):  # one reply per RCPT, then the one to DATA
            return _READ_ON
        return Step(result=by_code(*self._mail_reply))

    @property
    def _all_refused(self) -> bool:
        return len(self.refused) == len(self.recipients)

    def _rcpt(self, index: int) -> bytes:
        return b"RCPT TO:<%s>\r\n" % self.recipients[index].encode()

    def _out_of_step(self, reason: str) -> Step:
        return Step(result=Outcome("retry", None, "connection out of step after MAIL, before the message was sent: "
                                   f"{reason}", self.refused), drop=True, out_of_step=reason)

    def _mail_then_out_of_step(self) -> Outcome:
        code, message = self._mail_reply
        return Outcome("retry", code, f"MAIL {code} {message}, then the replies went out of step")
