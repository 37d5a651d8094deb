"""Rendered email + recipients → RFC 5322 bytes: the header lines (dunning.delivery.headers), then the MIME parts.

Assembled by hand instead of through email.message.EmailMessage, whose per-message cost shows in a
run (bench/README.md): bodies go through binascii: 7bit when
they are ASCII with lines under 998 octets, 8bit when they are not ASCII and the server takes 8-bit
data; else the text part in quoted-printable when it is mostly ASCII (readable in the raw message) and
the HTML part in base64 (cheaper to encode than quoted-printable).
"""

from __future__ import annotations

import binascii
import hashlib
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from dunning.delivery.headers import FOLD_AT, checked_domain, envelope_address, message_headers
from dunning.errors import MessageError

__all__ = ["CRLF", "MAX_LINE", "FOLD_AT", "BASE64", "CrlfBytes", "DotSafeBytes", "AsciiBytes", "AsciiDotSafeBytes",
           "has_8bit", "Renderable", "BodyPieces", "EncodedConstants", "encoded_constants", "make_message_id",
           "address_domain", "envelope_address", "build_message"]

CRLF = b"\r\n"
MAX_LINE = 998
_ASCII = bytes(range(128))
BASE64 = b"base64"
_8BIT = b"8bit"
_LEADING_DOT = re.compile(rb"\n\.")  # a regex scans with memchr on the newline, unlike `in`
# A byte looked for by its value: `in` tries a bytes needle as an integer first, and pays for that failure.
_CR, _LF, _EQ = 13, 10, 61


class CrlfBytes(bytes):
    """Bytes whose every line ends with CRLF (what build_message returns); the transport trusts it."""


class DotSafeBytes(CrlfBytes):
    """CRLF bytes in which no line starts with a dot: SMTP DATA needs no dot-stuffing."""


class AsciiBytes(CrlfBytes):
    """CRLF bytes that are all ASCII: no need to look through them for 8-bit bytes."""


class AsciiDotSafeBytes(DotSafeBytes, AsciiBytes):
    """CRLF bytes, all ASCII, in which no line starts with a dot."""


_BUILT = {(False, False): CrlfBytes, (True, False): DotSafeBytes, (False, True): AsciiBytes,
          (True, True): AsciiDotSafeBytes}  # (dot-safe, ASCII) -> the class a message is built as


def has_8bit(message: bytes) -> bool:
    """Whether the message holds bytes past ASCII (build_message's output says so without a look)."""
    return not isinstance(message, AsciiBytes) and not message.isascii()


class Renderable(Protocol):
    """What a message is built from: a rendered email's parts and language (read-only)."""

    @property
    def subject(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def lang(self) -> str: ...


@dataclass(frozen=True, slots=True)
class BodyPieces:
    """A body as the outputs it was joined from, and the outputs encoded ahead (encoded_constants)."""

    body: str                  # "".join(texts): the pieces stand for this very string only
    texts: Sequence[str]
    known: Mapping[str, bytes]


class EncodedConstants(dict[str, bytes]):
    """encoded_constants' texts, with what the line-length check needs of them: `line_room` is how many bytes the
    outputs between two of them may add to a line (-1: no room to trust, the body is looked through)."""

    line_room = -1


def encoded_constants(texts: Iterable[str]) -> EncodedConstants:
    """The texts a body is often made of (a template's constants), each as UTF-8 with CRLF line breaks.

    Only texts holding a line break, so that each ends the line of the outputs before it. Left out: a text
    holding a CR (line breaks are normalized over the whole body), a line starting with a dot inside it, or a dot
    first (whether that starts a line depends on the output before it), "=_" (how a boundary starts) or an "="
    last, and a lone surrogate.
    """
    known, first, last = EncodedConstants(), 0, 0
    for text in texts:
        if ("\n" not in text or "\r" in text or "\n." in text or text.startswith(".") or "=_" in text
                or text.endswith("=")):
            continue
        try:
            data = text.encode("utf-8").replace(b"\n", CRLF)
        except UnicodeEncodeError:
            continue
        if any(len(line) > MAX_LINE for line in data.split(b"\n")):
            continue
        known[text] = data
        first, last = max(first, data.index(b"\n")), max(last, len(data) - data.rindex(b"\n") - 1)
    known.line_room = MAX_LINE - first - last
    return known


def make_message_id(key: str, domain: str) -> str:
    """A Message-ID stable for the same notice key, so a retried notice keeps its identity."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{checked_domain(domain, 'Message-ID')}>"


def address_domain(address: str) -> str:
    """The ASCII (punycode) domain of a valid address, e.g. for make_message_id."""
    return envelope_address(address, "address").rpartition("@")[2]


def build_message(email: Renderable, *, from_address: str, from_name: str, reply_to: str | None,
                  to: Sequence[str], cc: Sequence[str], message_id: str, date: datetime,
                  eight_bit: bool = False) -> CrlfBytes:
    """RFC 5322 bytes with CRLF line endings: multipart/alternative text + HTML in UTF-8.

    eight_bit: bodies go as they are (8bit) unless a line is too long, for a server that takes 8-bit
    data (8BITMIME); the result then holds non-ASCII bytes exactly when some body does.
    """
    head = message_headers(email.subject, email.lang, from_address=from_address, from_name=from_name,
                           reply_to=reply_to, to=to, cc=cc, message_id=message_id, date=date)
    # "=" never appears unescaped in quoted-printable or base64, so "=_..." cannot occur in a body.
    boundary = b"=_" + hashlib.sha256(message_id.encode("ascii")).hexdigest()[:32].encode("ascii")
    parts = [head, b'Content-Type: multipart/alternative;\r\n boundary="', boundary, b'"\r\n\r\n',
             b"This is a multi-part message in MIME format.\r\n"]
    dot_safe = ascii_ = True  # header, preamble and boundary lines never start with a dot and are ASCII
    html, pieces = email.html, getattr(email, "html_pieces", None)
    if pieces is not None and pieces.body is not html:   # pieces of another text than this HTML
        pieces = None
    for subtype, body, readable, outputs in ((b"plain", email.text, True, None), (b"html", html, False, pieces)):
        try:
            encoding, encoded, dot_free = _encode_body(body, boundary, readable=readable, eight_bit=eight_bit,
                                                       pieces=outputs)
        except UnicodeEncodeError:
            raise MessageError(f"text/{subtype.decode()} body",
                               "not valid Unicode (lone surrogate)") from None
        dot_safe, ascii_ = dot_safe and dot_free, ascii_ and encoding != _8BIT
        parts += [b"--", boundary, b"\r\nContent-Type: text/", subtype, b'; charset="utf-8"\r\n'
                  b"Content-Transfer-Encoding: ", encoding, b"\r\n\r\n", *encoded, CRLF]
    parts += [b"--", boundary, b"--\r\n"]
    return _BUILT[dot_safe, ascii_](b"".join(parts))


def _encode_body(text: str, boundary: bytes, *, readable: bool, eight_bit: bool,
                 pieces: BodyPieces | None = None) -> tuple[bytes, list[bytes], bool]:
    """7bit (or 8bit) when possible; else quoted-printable (readable parts, mostly ASCII) or base64: the encoded
    body as pieces to join into the message, and whether no line of it starts with a dot."""
    joined = _joined(pieces) if pieces is not None else None
    if joined is None:
        raw, dot, short, no_boundary = _crlf_utf8(text), None, False, False
    else:
        chunks, dot, short, no_boundary = joined
        if short and no_boundary and eight_bit:   # goes as it is: joined only in the message
            return (b"7bit" if all(map(bytes.isascii, chunks)) else _8BIT), chunks, not dot
        raw = b"".join(chunks)
    ascii_ = raw.isascii()
    if ((ascii_ or eight_bit) and (short or not _has_long_line(raw))
            and (no_boundary or boundary not in raw)):
        return (b"7bit" if ascii_ else _8BIT), [raw], not (_dot_first(raw) if dot is None else dot)
    if readable and 6 * (len(raw.translate(None, _ASCII)) + raw.count(b"=")) < len(raw):
        encoded = binascii.b2a_qp(raw, quotetabs=False, istext=True)
        return b"quoted-printable", [encoded], not _dot_first(encoded)
    return BASE64, [_base64_lines(raw)], True


def _crlf_utf8(text: str) -> bytes:
    """The text in UTF-8 with every line break (CRLF, CR or LF) a CRLF."""
    raw = text.encode("utf-8")
    if _CR in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw.replace(b"\n", CRLF)


def _joined(pieces: BodyPieces) -> tuple[list[bytes], bool, bool, bool] | None:
    """_crlf_utf8 of the body, as its pieces (those known taken as encoded ahead) to join; whether a line of it
    may start with a dot; whether its lines are known to be short enough, and "=_" (a boundary's start) known to be
    absent, without a look through the whole; None when a piece holds a CR (normalized over the whole body only).

    A known piece ends the line of the pieces before it, so only the bytes of the others between two known ones
    can make a line too long; and no known piece holds "=_" or ends with "=".
    """
    known = pieces.known
    room = getattr(known, "line_room", -1)   # a plain mapping: nothing to trust, the body is looked through
    encoded: list[bytes] = []
    get, dot, run, short, no_boundary = known.get, False, 0, room >= 0, True
    for text in pieces.texts:
        data = get(text)
        if data is not None:
            run = 0
        else:   # an email's own value, or a constant encoded_constants leaves out
            data = text.encode("utf-8")
            if _CR in data:
                return None
            if _LF in data:
                data = data.replace(b"\n", CRLF)
                dot = dot or data.find(b"\n.") >= 0
            # (startswith and endswith: Markup's slicing is Python code)
            if text.startswith(".") and (not encoded or not encoded[-1] or encoded[-1].endswith(b"\n")):
                dot = True   # after an empty output: may be
            if _EQ in data and (data.find(b"=_") >= 0 or data.endswith(b"=")):
                no_boundary = False
            run += len(data)
            if run > room:
                short = False
        encoded.append(data)
    return encoded, dot, short, no_boundary


def _dot_first(data: bytes) -> bool:
    """Whether a line of data starts with a dot (which SMTP would have to double)."""
    return data[:1] == b"." or _LEADING_DOT.search(data) is not None


def _base64_lines(raw: bytes) -> bytes:
    """Base64 in lines of 76 characters joined by CRLF (no trailing CRLF)."""
    encoded = binascii.b2a_base64(raw, newline=False)
    full, rest = divmod(len(encoded), 76)
    # One C call cuts every full line instead of a Python loop of slices.
    lines = list(_line_cutter(full).unpack_from(encoded)) if full else []
    if rest:
        lines.append(encoded[76 * full:])
    return CRLF.join(lines)


@lru_cache(maxsize=256)
def _line_cutter(lines: int) -> struct.Struct:
    return struct.Struct("76s" * lines)


def _has_long_line(raw: bytes) -> bool:
    """Whether a line passes 998 octets; jumps a window at a time instead of line by line."""
    pos, end = 0, len(raw)
    while end - pos > MAX_LINE:
        newline = raw.rfind(b"\n", pos, pos + MAX_LINE + 1)
        if newline < 0:
            return True
        pos = newline + 1
    return False
