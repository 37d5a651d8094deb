"""What a bounce message says: which recipients failed, hard or soft. Pure: a parsed message in, a verdict out.

Detection is flufl.bounce's (GNU Mailman's detectors, which know the real MTAs' formats); where the
message is an RFC 3464 delivery status notification its per-recipient fields (Action, Status,
Diagnostic-Code) are read as well and take precedence, since they say exactly what happened.

Hard: a permanent failure (5.x.x, "user unknown", "mailbox does not exist"). Soft: a temporary one
(4.x.x, a delay), and the permanent codes that are about the mailbox's state rather than its existence
(5.2.2 mailbox full, quota, greylisting), since those clear up by themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from typing import Literal

from flufl.bounce import all_failures

from dunning.vocabulary import BounceKind

__all__ = ["Failure", "Verdict", "classify", "kind_of"]

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_FAILURE_STATUS = re.compile(r"\b([45])\.(\d{1,3})\.(\d{1,3})\b")  # in free text: never a version number
_SOFT_TEXT = re.compile(r"mailbox (is )?full|over ?quota|quota exceeded|exceeded (the )?(storage|quota)|"
                        r"insufficient (system )?storage|greylist|graylist", re.I)
_HARD_TEXT = re.compile(r"user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|"
                        r"doesn't exist|mailbox unavailable|recipient (address )?rejected|invalid recipient|"
                        r"address rejected|not found", re.I)
_SOFT_STATUSES = {"5.2.2", "5.2.0"}  # mailbox full, other mailbox status: the mailbox exists
_DONE_ACTIONS = {"delivered", "relayed", "expanded"}


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient a bounce reports as failed."""

    address: str  # lower-cased
    kind: BounceKind
    status: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one bounce message says: its failures, and whether it is a bounce at all."""

    outcome: Literal["bounce", "ignored", "unparsed"]
    failures: tuple[Failure, ...] = ()

    @property
    def kind(self) -> str:
        """hard if any failure is hard, soft if all are soft, else the outcome (ignored, unparsed)."""
        if not self.failures:
            return self.outcome
        return "hard" if any(f.kind == "hard" for f in self.failures) else "soft"


def kind_of(status: str | None, text: str = "", *, permanent: bool = True) -> BounceKind:
    """Hard or soft from a status code, the diagnostic text, and whether the failure was final."""
    match = _STATUS.search(status or "") or _FAILURE_STATUS.search(text)
    code = ".".join(match.groups()) if match else None
    if code in _SOFT_STATUSES or _SOFT_TEXT.search(text):
        return "soft"
    if code is not None:
        return "hard" if code.startswith("5") else "soft"
    if _HARD_TEXT.search(text):
        return "hard"
    return "hard" if permanent else "soft"


def _address(raw: str | bytes) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    # "rfc822; user@example.com" in a DSN field; flufl gives the address alone.
    return text.rpartition(";")[2].strip().strip("<>").strip().lower()


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _dsn_blocks(message: Message) -> list[Message]:
    """The per-recipient field blocks of every message/delivery-status part."""
    blocks: list[Message] = []
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                blocks.extend(b for b in payload[1:] if isinstance(b, Message))
    return blocks


def _from_dsn(message: Message) -> tuple[list[Failure], bool]:
    """Failures the DSN fields report, and whether it reported recipients at all."""
    failures = []
    blocks = [b for b in _dsn_blocks(message) if _field(b, "Final-Recipient") or _field(b, "Original-Recipient")]
    for block in blocks:
        action = _field(block, "Action").lower()
        if action in _DONE_ACTIONS:
            continue
        address = _address(_field(block, "Final-Recipient") or _field(block, "Original-Recipient"))
        status = (_STATUS.search(_field(block, "Status")) or [None])[0]
        if status and status.startswith("2"):
            continue  # a success reported in a failure's clothes
        diagnostic = _field(block, "Diagnostic-Code").partition(";")[2].strip() or None
        kind = kind_of(status, diagnostic or "", permanent=action != "delayed")
        if action == "delayed":
            kind = "soft"
        if "@" in address:  # an X.400 or other non-Internet address cannot be one of ours
            failures.append(Failure(address, kind, status, diagnostic))
    return failures, bool(blocks)


def _body_text(message: Message) -> str:
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                texts.append(payload.decode(part.get_content_charset() or "latin-1", "replace"))
    return "\n".join(texts)[:20000]


def classify(message: Message) -> Verdict:
    """The verdict on one bounce message (a compat32 email.message.Message, as flufl.bounce expects)."""
    failures, had_dsn = _from_dsn(message)
    seen = {f.address for f in failures}
    temporary, permanent = all_failures(message)
    found = [(a, True) for a in permanent] + [(a, False) for a in temporary]
    if found and (extra := [(address, final) for raw, final in found if (address := _address(raw)) not in seen]):
        text = _body_text(message)
        match = _FAILURE_STATUS.search(text)
        for address, final in extra:
            if address and "@" in address and address not in seen:
                seen.add(address)
                kind: BounceKind = kind_of(None, text) if final else "soft"
                failures.append(Failure(address, kind,
                                        ".".join(match.groups()) if match else None))
    if failures:
        return Verdict("bounce", _one_per_address(failures))
    return Verdict("ignored" if had_dsn else "unparsed")


def _one_per_address(failures: list[Failure]) -> tuple[Failure, ...]:
    """One failure per address, the hard one when a message reports both, sorted by address."""
    kept: dict[str, Failure] = {}
    for failure in failures:
        if failure.address not in kept or (failure.kind == "hard" and kept[failure.address].kind == "soft"):
            kept[failure.address] = failure
    return tuple(kept[address] for address in sorted(kept))
