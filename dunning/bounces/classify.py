"""What a bounce message says: which recipients failed, and why. Pure: a parsed message in, a verdict out.

Each failed recipient gets a reason (`reasons`: user unknown, mailbox full, blocked, …) and its effect
on the address: hard (suppressed at once), soft (counted toward the soft limit), ours (never counted
against the customer). Where the message is an RFC 3464 delivery status notification its per-recipient
fields (Action, Status, Diagnostic-Code) decide; DSN fields written as text, and the formats of
`detectors`, come next; flufl.bounce (GNU Mailman's detectors, which know many MTAs' own formats) finds
the recipients of the rest, and the text that speaks of each gives its reason. ARF feedback, auto-replies
and delivery notifications are recognised as such and carry no failure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from typing import Literal

from dunning.bounces import detectors
from dunning.bounces.detectors import ADDRESS, Found
from dunning.bounces.reasons import Effect, effect_of, reason_of

__all__ = ["Failure", "Verdict", "Outcome", "classify"]

Outcome = Literal["bounce", "feedback", "autoreply", "delivered", "unparsed"]

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_FAILURE_STATUS = re.compile(r"\b([45])\.(\d{1,3})\.(\d{1,3})\b")  # in free text: never a version number
_DONE_ACTIONS = {"delivered", "relayed", "expanded"}
# Where a bounce's own words end and the returned message begins, in bounces that are not MIME.
_RETURNED = re.compile(r"^\s*[-=*_]{2,}.*(original|headers|copy of|returned|unsent|undelivered).*$|"
                       r"^\s*(message headers follow|original message follows|below this line)|"
                       r"^(received|return-path): ", re.I | re.M)
_TAG = re.compile(r"<[^>]*>")
# "550 : User unknown", the address left out: how some mobile carriers' filters refuse a sender.
_NO_ONE = re.compile(r"\b5\d\d:? ?: user unknown", re.I)
# The words of a directory lookup that found no one (Exchange, Domino, IMail, …), whatever the SMTP stage.
_LOOKUP = re.compile(r"not recogni[sz]ed|not listed in|invalid final delivery|unknown user:|user not exist|"
                     r"unrouteable address|no valid recipients|does not exist|not a valid (mailbox|recipient)|"
                     r"invalid recipient|address rejected|could ?n.t be found|no such user here|mailbox unavailable|"
                     r"check if (the )?address is correct|other recipients in the same domain|"
                     r"リストにありません", re.I)
_AT_RCPT = re.compile(r"(?<![a-z])RCPT\b", re.I)
_RANK = {"hard": 0, "soft": 1, "ours": 2}


class _QuietInfo(logging.Filter):
    """flufl.bounce's INFO lines (one per detector run) said at DEBUG: shown only when verbose."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= logging.getLogger().getEffectiveLevel()


logging.getLogger("flufl.bounce").addFilter(_QuietInfo())


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient a bounce reports as failed, why, and what that does to the address."""

    address: str  # lower-cased
    reason: str
    kind: Effect
    status: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one message says: a bounce and its failures, or what else it is."""

    outcome: Outcome
    failures: tuple[Failure, ...] = ()

    @property
    def kind(self) -> str:
        """The worst failure's effect (hard, soft, ours), else the outcome (feedback, delivered, …)."""
        if not self.failures:
            return self.outcome
        return min((f.kind for f in self.failures), key=_RANK.__getitem__)


def classify(message: Message) -> Verdict:
    """The verdict on one message (a compat32 email.message.Message, as flufl.bounce expects)."""
    if detectors.is_feedback(message):
        return Verdict("feedback")
    whole = _text_parts(message)
    text = _cut(whole)
    ses = detectors.amazon_ses(whole)
    if ses is not None and ses[0] != "bounce":
        return Verdict("feedback" if ses[0] == "complaint" else "delivered")
    blocks = _dsn_blocks(message)
    found: list[Found] = ses[1] if ses else _fields(blocks)
    failures = _failures(found, text)
    if not failures and not ses and not (blocks and _all_done(blocks)):
        for finder in _finders(message):  # the first that finds a failure decides
            found = finder(text)
            if failures := _failures(found, text):
                break
    if failures:
        return Verdict("bounce", failures)
    if blocks or any(f.action in _DONE_ACTIONS for f in found):
        return Verdict("delivered")
    return Verdict("autoreply" if detectors.is_autoreply(message) else "unparsed")


def _finders(message: Message) -> list[Callable[[str], list[Found]]]:
    """Where to look for failed recipients when there are no DSN fields, surest first."""
    finders: list[Callable[[str], list[Found]]] = [detectors.text_dsn, detectors.dragonfly, detectors.transcript,
                                                   lambda _: _flufl(message)]
    if not detectors.is_autoreply(message):
        finders.append(lambda text: detectors.loose(message, text))
    return finders


def _failures(found: Iterable[Found], text: str) -> tuple[Failure, ...]:
    """One failure per failed address, the worst when a message reports one address twice, by address."""
    kept: dict[str, Failure] = {}
    for item in found:
        failure = _failure(item, text)
        if failure is not None and (failure.address not in kept
                                    or _RANK[failure.kind] < _RANK[kept[failure.address].kind]):
            kept[failure.address] = failure
    return tuple(kept[address] for address in sorted(kept))


def _failure(item: Found, text: str) -> Failure | None:
    """The failure one finding reports, or None when it reports a success or no Internet address."""
    address = item.address.strip().strip("<>\"'").lower()
    action = (item.action or "").lower()
    if not ADDRESS.match(address) or action in _DONE_ACTIONS:
        return None
    diagnostic = item.diagnostic or detectors.near(text, address)
    status = _code(item.status) or _code(diagnostic) or _code(text, _FAILURE_STATUS)
    if status and status.endswith(".0.0"):  # a generic code where the diagnostic may give the precise one
        status = _code(diagnostic, _FAILURE_STATUS) or status
    if status and status.startswith("2"):
        return None  # a success reported in a failure's clothes
    final = action != "delayed" and not (status or "").startswith("4")  # a 4.x.x is temporary, however final
    reason = reason_of(status, diagnostic)
    if reason == "undefined" and item.diagnostic is None:
        reason = reason_of(status, text[:3000])  # nothing said next to the address: what the bounce says at all
    if reason == "userunknown" and not _certain(status, diagnostic, text, item.diagnostic is None):
        reason = "filtered"
    return Failure(address, reason, effect_of(reason, final=final), status, diagnostic[:500])


def _certain(status: str | None, diagnostic: str, text: str, in_text: bool) -> bool:
    """Whether "user unknown" is the mailbox's answer: with an X.1.x (or 5.2.1) code or in reply to RCPT TO,
    else in the words a directory lookup uses unless under a policy code (X.7.x). Anywhere else (after DATA,
    with no code, with the address left out) it is as often a filter's answer to the message."""
    context = diagnostic if in_text else text
    if _NO_ONE.search(diagnostic):
        return False
    if (status or "").startswith(("5.1.", "4.1.", "5.2.1")) or _AT_RCPT.search(context):
        return True
    return not (status or "").startswith(("5.7.", "4.7.")) and bool(_LOOKUP.search(diagnostic))


def _code(text: str | None, pattern: re.Pattern[str] = _STATUS) -> str | None:
    match = pattern.search(text or "")
    return ".".join(match.groups()) if match else None


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
                # All blocks: a DSN with no blank line after its per-message fields (AOL's) has one block only.
                blocks.extend(b for b in payload if isinstance(b, Message)
                              and (_field(b, "Final-Recipient") or _field(b, "Original-Recipient")))
    return blocks


def _all_done(blocks: list[Message]) -> bool:
    return all(_field(b, "Action").lower() in _DONE_ACTIONS for b in blocks)


def _fields(blocks: list[Message]) -> list[Found]:
    """What the DSN's per-recipient fields say (read as text where one block holds several recipients, as
    when no blank line separates them)."""
    found: list[Found] = []
    for b in blocks:
        if len(b.get_all("Final-Recipient") or ()) > 1:
            found += detectors.text_dsn(b.as_string())
        else:
            found.append(Found(_recipient(b), _field(b, "Status") or None,
                               _field(b, "Diagnostic-Code").partition(";")[2].strip() or None,
                               _field(b, "Action").lower() or None))
    return found


def _recipient(block: Message) -> str:
    """The final recipient, or the original one where the final is no Internet address (an X.400 or local name)."""
    final, original = (_field(block, name).rpartition(";")[2].strip().strip("<>")
                       for name in ("Final-Recipient", "Original-Recipient"))
    return original if original and not ADDRESS.match(final) else final


def _flufl(message: Message) -> list[Found]:
    """The recipients flufl.bounce's detectors find, temporary failures marked delayed."""
    from flufl.bounce import all_failures  # its forty detectors load only for the messages that need them

    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector that trips on a malformed message (no From, say) finds nothing in it
        logging.getLogger(__name__).debug("flufl.bounce failed on a message", exc_info=True)
        return []
    return [Found(_decoded(raw), None, None, action)
            for addresses, action in ((permanent, "failed"), (temporary, "delayed")) for raw in addresses]


def _decoded(raw: str | bytes) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _text_parts(message: Message) -> str:
    """The bounce's plain text parts (else its HTML ones, tags dropped), not the returned message's."""
    texts: dict[str, list[str]] = {"plain": [], "html": []}
    _collect(message, texts)
    if texts["plain"]:
        return "\n".join(texts["plain"])[:50000]
    return _TAG.sub(" ", "\n".join(texts["html"])[:100000])[:50000]


def _cut(text: str) -> str:
    """The bounce's own words: its text cut where a returned copy starts (a forwarded bounce unquoted)."""
    lines = text.splitlines()
    if sum(line.startswith(">") for line in lines) > len(lines) / 2:
        text = "\n".join(line[1:].removeprefix(" ") if line.startswith(">") else line for line in lines)
    for match in _RETURNED.finditer(text):
        if match.start() > 40:
            return text[:match.start()]
    return text


def _collect(part: Message, texts: dict[str, list[str]]) -> None:
    """Text parts, depth first, never inside a returned message (message/rfc822) and never too deep."""
    stack: list[tuple[Message, int]] = [(part, 0)]
    while stack:
        current, depth = stack.pop(0)
        if current.get_content_type() in ("message/rfc822", "text/rfc822-headers") or depth > 20:
            continue
        payload = current.get_payload()
        if current.get_content_maintype() == "multipart" and isinstance(payload, str):
            texts["plain"].append(payload)  # its boundary was never found: read as text
        elif isinstance(payload, list):
            stack[:0] = [(p, depth + 1) for p in payload if isinstance(p, Message)]
        elif current.get_content_maintype() == "text":
            data = current.get_payload(decode=True)
            if isinstance(data, bytes):
                charset = current.get_content_charset("latin-1") if _known_charset(current) else "latin-1"
                texts["html" if current.get_content_subtype() == "html" else "plain"].append(
                    data.decode(charset, "replace"))


def _known_charset(part: Message) -> bool:
    import codecs

    try:
        codecs.lookup(part.get_content_charset("latin-1"))
    except LookupError:
        return False
    return True
