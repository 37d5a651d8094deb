"""Bounce formats flufl.bounce does not read, and messages that are no bounce at all. Pure: text in, findings out.

- DSN fields written as text rather than a message/delivery-status part (Amazon WorkMail, AOL's DSN with
  no blank line before the per-recipient fields, relays that flatten the report);
- the DragonFly Mail Agent's plain notice; sendmail's transcript (`<addr>... User unknown`);
- Amazon SES notifications (JSON, as SNS mails them): bounces, complaints, deliveries;
- ARF feedback (RFC 5965) and auto-replies (RFC 3834): recognised so they never count as a failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

__all__ = ["Found", "ADDRESS", "text_dsn", "dragonfly", "transcript", "amazon_ses", "is_feedback",
           "is_autoreply", "looks_like_bounce", "loose", "near"]

ADDRESS = re.compile(r"(?:[a-z0-9!#$%&'*+/=?^_`{|}~.-]+|\"[^\"\\\r\n]+\")@(?:[a-z0-9-]+\.)+[a-z0-9-]{2,}\Z", re.I)
_FIELD = re.compile(r"^(final-recipient|original-recipient|action|status|diagnostic-code|x-actual-recipient)"
                    r"\s*:\s*(.*)$", re.I)
_IN_TEXT = re.compile(r"<?([a-z0-9!#$%&'*+/=?^_`{|}~.-]+@(?:[a-z0-9-]+\.)+[a-z0-9-]{2,})>?", re.I)
_DRAGONFLY = re.compile(r"There was an error delivering your mail to <([^>]+)>\.\s*\n(.*?)"
                        r"(?:\n\s*Message headers follow|\Z)", re.S)
_TRANSCRIPT = re.compile(r"^(?:<<<|>>>)?\s*(?:\d{3}[ -])?(?:[245]\.\d{1,3}\.\d{1,3} )?<?([^\s<>]+@[^\s<>]+?)>?"
                         r"\.\.\.\s*(.+)$", re.M)
_BOUNCE_FROM = re.compile(r"mailer-daemon|post_?master|mail delivery|mail administrator|mailadmin|"
                          r"bounce|nobody@|no-?reply|mail system", re.I)
_BOUNCE_SUBJECT = re.compile(r"undeliver|deliver(y|ed)? (status|fail|report|error|notification)|returned mail|"
                             r"failure|failed|not (be )?delivered|non.?deliver|bounce|unzustellbar|"
                             r"could not|error|warning|problem|rejected", re.I)
# Lines that name the sender or the message, never a failed recipient (a bounce's summary of what it returns).
_SENDER_LINE = re.compile(r"\s*(from|reply-to|sender|return-path|mail from|message-id|in-reply-to|references)\s*:",
                          re.I)
_AUTOREPLY_SUBJECT = re.compile(r"^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|"
                                r"absence|vacation|away from|abwesenheit|autoreply|auto:)", re.I)


@dataclass(frozen=True, slots=True)
class Found:
    """One recipient a text names as failed, and what it says of it."""

    address: str
    status: str | None = None
    diagnostic: str | None = None
    action: str | None = None


def text_dsn(text: str) -> list[Found]:
    """Per-recipient DSN fields written in a text body, one record per Final-/Original-Recipient."""
    records: list[dict[str, str]] = []
    for line in _unfolded(text):
        match = _FIELD.match(line)
        if match is None:
            continue
        name, value = match.group(1).lower(), match.group(2).strip()
        if name in ("final-recipient", "original-recipient"):
            if not records or name in records[-1] or "action" in records[-1] or "status" in records[-1]:
                records.append({})
        elif not records:
            continue
        records[-1].setdefault(name, value)
    found = []
    for record in records:
        address = (record.get("final-recipient") or record.get("original-recipient") or "").rpartition(";")[2]
        found.append(Found(address.strip().strip("<>"), record.get("status"),
                           record.get("diagnostic-code", "").partition(";")[2].strip() or None, record.get("action")))
    return found


def _unfolded(text: str) -> Iterator[str]:
    """Lines with their continuation lines (leading white space) joined on."""
    current = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and current:
            current += " " + line.strip()
            continue
        if current:
            yield current
        current = line
    if current:
        yield current


def dragonfly(text: str) -> list[Found]:
    """The DragonFly Mail Agent's notice: the address, then what went wrong, before the headers."""
    return [Found(address, None, " ".join(why.split())) for address, why in _DRAGONFLY.findall(text)]


def transcript(text: str) -> list[Found]:
    """sendmail's `<address>... reason` lines (its transcript and its list of fatal errors)."""
    found: dict[str, Found] = {}
    for address, why in _TRANSCRIPT.findall(text):
        if why.strip().lower().startswith(("sent", "deferred:", "queued", "connecting", "using")):
            continue
        found.setdefault(address.lower(), Found(address, None, why.strip()))
    return list(found.values())


def loose(message: Message, text: str) -> list[Found]:
    """The addresses a bounce's own text names, for bounces in no format a detector knows: only in a
    message that says it is a bounce (its sender or subject), never the message's own From and To."""
    if not looks_like_bounce(message):
        return []
    own = {a.lower() for a in _IN_TEXT.findall(" ".join(str(message.get(h, "")) for h in ("From", "To", "Sender")))}
    found: dict[str, Found] = {}
    lines = [line for line in text.splitlines() if not _SENDER_LINE.match(line)]
    for address in _IN_TEXT.findall("\n".join(lines)):
        lowered = address.lower()
        if lowered not in own and not lowered.startswith(("postmaster@", "mailer-daemon@")):
            found.setdefault(lowered, Found(address))
    return list(found.values())


def looks_like_bounce(message: Message) -> bool:
    """Whether a message says it is a bounce: its sender (a mailer daemon, postmaster) or its subject."""
    return bool(_BOUNCE_FROM.search(str(message.get("From", "")))
                or _BOUNCE_SUBJECT.search(str(message.get("Subject", ""))))


def near(text: str, address: str) -> str:
    """The lines of a text that speak of one address (each and the two lines after), else the text's start."""
    lines = text.splitlines()
    lowered = address.lower()
    snippets = [" ".join(lines[n:n + 3]) for n, line in enumerate(lines) if lowered in line.lower()]
    snippet = " ".join(" ".join(snippets).split())
    return snippet if len(snippet) > len(address) + 12 else " ".join(text[:1500].split())


def amazon_ses(text: str) -> tuple[str, list[Found]] | None:
    """An Amazon SES notification's type (bounce, complaint, delivery) and the recipients it names."""
    start = text.find("{")
    if start < 0 or "notificationType" not in text:
        return None
    try:
        # SNS folds a long line with "!" and a line break and a space; undone before the JSON is read.
        data, _ = json.JSONDecoder(strict=False).raw_decode(text[start:].replace("\r", "").replace("!\n ", ""))
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):  # SNS wraps the notification
        try:
            data = json.loads(data["Message"])
        except ValueError:
            return None
    if not isinstance(data, dict) or not isinstance(data.get("notificationType"), str):
        return None
    kind = data["notificationType"].lower()
    bounce = data.get("bounce") or {}
    permanent = str(bounce.get("bounceType", "")).lower() == "permanent"
    found = [Found(str(r.get("emailAddress", "")), r.get("status"), r.get("diagnosticCode"),
                   "failed" if permanent else "delayed")
             for r in bounce.get("bouncedRecipients") or () if isinstance(r, dict)]
    return kind, found


def is_feedback(message: Message) -> bool:
    """An ARF feedback report (a complaint), or a provider's feedback loop mail in its own shape."""
    if message.get_param("report-type", header="content-type") == "feedback-report":
        return True
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            return True
    return bool(message.get("X-HmXmrOriginalRecipient")) or "feedback-type:" in _head_text(message).lower()


def is_autoreply(message: Message) -> bool:
    """An automatic reply (RFC 3834's Auto-Submitted, or the headers and subjects vacation programs use), and
    not a bounce, which carries the same Auto-Submitted header."""
    if looks_like_bounce(message):
        return False
    if str(message.get("Auto-Submitted", "")).lower().startswith("auto-replied"):
        return True
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponse")):
        return True
    if str(message.get("Precedence", "")).lower() == "auto_reply":
        return True
    return bool(_AUTOREPLY_SUBJECT.match(str(message.get("Subject", "")).strip()))


def _head_text(message: Message) -> str:
    """The first text part's start: where a feedback loop mail states its type."""
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload[:4000].decode("latin-1")
    return ""
