"""What became of one message at the SMTP server: sent, retry, failed or unknown."""

from __future__ import annotations

from dataclasses import dataclass, field

from dunning.vocabulary import OutcomeStatus

__all__ = ["Outcome", "by_code", "all_refused"]


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


def all_refused(refused: dict[str, tuple[int, str]]) -> Outcome:
    """Every recipient refused: retry if any refusal was temporary, else failed."""
    code, reply = next(((c, r) for c, r in refused.values() if 400 <= c < 500),
                       next(iter(refused.values())))
    return by_code(code, reply, refused)
