"""A message's header lines: addresses validated, words RFC 2047-encoded, long lines folded; no CR or LF gets through.

What stays the same for a whole run (sender lines, the Date of a given second, recent subjects) is
formatted once and cached.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from functools import lru_cache

from dunning.billing.addresses import ATEXT, FORBIDDEN, ascii_domain, normalize_address
from dunning.errors import MessageError

__all__ = ["FOLD_AT", "envelope_address", "checked_domain", "message_headers"]

FOLD_AT = 78
_WORD_BYTES = 42  # UTF-8 bytes per encoded word: "=?utf-8?b?" + 56 base64 chars + "?=" = 68 chars

_PLAIN_PHRASE = re.compile(rf"(?:{ATEXT}+ )*{ATEXT}+\Z")
_LANG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*\Z")
_DOT_ATOM = rf"{ATEXT}+(?:\.{ATEXT}+)*"
_MESSAGE_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>\Z")


def envelope_address(address: str, header: str = "address") -> str:
    """The validated ASCII form of an address (IDN domain in punycode); MessageError names the header."""
    try:
        return normalize_address(address)
    except ValueError as exc:
        raise MessageError(header, str(exc)) from None


def message_headers(subject: str, lang: str, *, from_address: str, from_name: str, reply_to: str | None,
                    to: Sequence[str], cc: Sequence[str], message_id: str, date: datetime) -> bytes:
    """The header lines of a message (each validated, RFC 2047-encoded where needed), ending in an empty line."""
    if date.tzinfo is None or date.utcoffset() is None:
        raise MessageError("Date", "needs a timezone-aware datetime")
    if not to:
        raise MessageError("To", "no recipient")
    lines = [_date(date.replace(microsecond=0, tzinfo=None), date.utcoffset()),
             _sender(from_name, from_address, reply_to), _address_list("To", to)]
    if cc:
        lines.append(_address_list("Cc", cc))
    lines += [_subject(subject), f"Message-ID: {_message_id(message_id)}", _content_language(lang), ""]
    return "\r\n".join(lines).encode("ascii")


@lru_cache(maxsize=16)
def _date(local: datetime, offset: timedelta) -> str:
    # Keyed by local time and offset, not by the aware datetime: those compare equal across zones.
    return f"Date: {format_datetime(local.replace(tzinfo=timezone(offset)))}"


@lru_cache(maxsize=16)
def _sender(from_name: str, from_address: str, reply_to: str | None) -> str:
    lines = _mailbox("From", from_name, envelope_address(from_address, "From"))
    if reply_to:
        lines += f"\r\nReply-To: {envelope_address(reply_to, 'Reply-To')}"
    return lines


@lru_cache(maxsize=1024)
def _subject(subject: str) -> str:
    return _unstructured("Subject", subject)


@lru_cache(maxsize=256)
def _content_language(lang: str) -> str:
    return f"MIME-Version: 1.0\r\nContent-Language: {_language(lang)}\r\nAuto-Submitted: auto-generated"


def _check(header: str, value: str) -> None:
    match = FORBIDDEN.search(value)
    if match:
        char = match.group()
        what = "line break (CR/LF)" if char in "\r\n" else f"control character U+{ord(char):04X}"
        raise MessageError(header, f"{what} at position {match.start()}")


def checked_domain(domain: str, header: str) -> str:
    """The domain in ASCII; MessageError names the header."""
    try:
        return ascii_domain(domain)
    except ValueError as exc:
        raise MessageError(header, str(exc)) from None


def _address_list(header: str, addresses: Sequence[str]) -> str:
    if isinstance(addresses, str):
        raise MessageError(header, "expected a list of addresses, got a string")
    if len(addresses) == 1:   # the usual case: one token, nothing to fold
        return f"{header}: {envelope_address(addresses[0], f'{header} (address 1)')}"
    items = [envelope_address(address, f"{header} (address {n})")
             for n, address in enumerate(addresses, 1)]
    return _fold(f"{header}: ", [item + "," for item in items[:-1]] + items[-1:])


def _fold(prefix: str, tokens: list[str]) -> str:
    """Join tokens with spaces, folding (CRLF before a space) where a line would pass 78 characters.

    The space stays on the next line, so unfolding restores the value exactly.
    """
    lines, line = [], prefix + tokens[0]
    for token in tokens[1:]:
        if len(line) + 1 + len(token) > FOLD_AT and line.strip():
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
    lines.append(line)
    return "\r\n".join(lines)


def _mailbox(header: str, name: str, address: str) -> str:
    _check(header, name)
    name = " ".join(name.split())  # runs of blanks in a display name mean one space (RFC 5322 phrase)
    if not name:
        return f"{header}: {address}"
    if name.isascii() and len(name) <= 60 and "=?" not in name:
        phrase = name if _PLAIN_PHRASE.match(name) else _quoted(name)
        return _fold(f"{header}: ", [phrase, f"<{address}>"])
    return f"{header}: {_encoded_words(name)}\r\n <{address}>"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unstructured(header: str, value: str) -> str:
    _check(header, value)
    if not value.strip():
        raise MessageError(header, "empty")
    prefix = f"{header}: "
    if value.isascii() and "=?" not in value and value == value.strip():
        words = value.split(" ")
        if len(prefix + words[0]) <= FOLD_AT and all(len(word) < FOLD_AT for word in words):
            return _fold(prefix, words)
    return prefix + _encoded_words(value)


def _encoded_words(text: str) -> str:
    """RFC 2047 B-encoded words of whole UTF-8 characters, one per folded line (each under 78).

    A word ends after a space when one is near: readers drop the blank between encoded words
    (RFC 2047 6.2), some parsers keep it in phrases; a space inside the word satisfies both.
    """
    raw = text.encode("utf-8")
    words, start = [], 0
    while start < len(raw):
        end = min(start + _WORD_BYTES, len(raw))
        while end < len(raw) and raw[end] & 0xC0 == 0x80:  # never split a character
            end -= 1
        space = raw.rfind(b" ", start + _WORD_BYTES // 2, end)
        if end < len(raw) and space > 0:
            end = space + 1
        words.append("=?utf-8?b?" + binascii.b2a_base64(raw[start:end], newline=False).decode() + "?=")
        start = end
    return "\r\n ".join(words)


def _message_id(message_id: str) -> str:
    _check("Message-ID", message_id)
    if not _MESSAGE_ID.match(message_id):
        raise MessageError("Message-ID", "not of the form <id@domain>")
    return message_id


def _language(lang: str) -> str:
    _check("Content-Language", lang)
    if not _LANG.match(lang):
        raise MessageError("Content-Language", "not a BCP 47 language tag")
    return lang
