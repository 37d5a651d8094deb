"""Email addresses as the contract accepts them and as SMTP and MIME send them: one rule for both."""

from __future__ import annotations

import re
from functools import lru_cache

import idna

__all__ = ["FORBIDDEN", "ATEXT", "normalize_address", "ascii_domain"]

FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL_PART = re.compile(rf"{ATEXT}+(?:\.{ATEXT}+)*\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}\Z")


@lru_cache(maxsize=4096)
def normalize_address(address: str) -> str:
    """The ASCII form of an address (an IDN domain in punycode); ValueError says why it cannot be sent."""
    if not isinstance(address, str) or not address:
        raise ValueError("empty address")
    match = FORBIDDEN.search(address)
    if match:
        char = match.group()
        raise ValueError("line break (CR/LF) in address" if char in "\r\n"
                         else f"control character U+{ord(char):04X} in address")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("not an address (local@domain)")
    if not local.isascii():
        raise ValueError("non-ASCII local part (needs SMTPUTF8, which is not supported)")
    if not _LOCAL_PART.match(local) or len(local) > 64:
        raise ValueError("malformed local part (quoted local parts are not supported)")
    result = f"{local}@{ascii_domain(domain)}"
    if len(result) > 254:
        raise ValueError("address longer than 254 characters")
    return result


def ascii_domain(domain: str) -> str:
    """The domain in ASCII (IDNA 2008 with the UTS 46 mapping); ValueError when it is not a host name."""
    try:
        # The stdlib's codec implements the older IDNA 2003.
        converted = domain if domain.isascii() else idna.encode(domain, uts46=True).decode("ascii")
    except (UnicodeError, ValueError) as exc:
        raise ValueError(f"invalid internationalized domain ({exc})") from None
    if len(converted) > 253 or not _DOMAIN.match(converted):
        raise ValueError("malformed domain")
    return converted
