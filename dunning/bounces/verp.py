"""The VERP envelope sender: `<local>+<email id>.<signature>@<domain>`, signed so a forged bounce is ignored.

Every email gets its own return path, so the bounce that comes back to it names one email (and so one
account and its recipients). The signature is a truncated HMAC of the email id under the settlement-link
keys: anyone can send a bounce to the bounce mailbox, but only one naming a signed id is believed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence

__all__ = ["verp_address", "parse_verp", "SIGNATURE_LENGTH"]

SIGNATURE_LENGTH = 8  # base32 characters: 40 bits, ample against guessing a bounce address by mail
_PURPOSE = b"dunning-verp\x00"
_TAG = re.compile(r"(\d{1,18})\.([a-z2-7]{" + str(SIGNATURE_LENGTH) + r"})\Z")


def _signature(key: str, email_id: int) -> str:
    digest = hmac.new(key.encode(), _PURPOSE + str(email_id).encode(), hashlib.sha256).digest()
    # Lower case: some MTAs fold the case of local parts; base32 survives that, base64 would not.
    return base64.b32encode(digest[:5]).decode().lower()


def verp_address(return_path: str, email_id: int, key: str) -> str:
    """The envelope sender of one email: the return path with the signed email id after a "+"."""
    local, _, domain = return_path.rpartition("@")
    return f"{local}+{email_id}.{_signature(key, email_id)}@{domain}"


def parse_verp(address: str, return_path: str, keys: Sequence[str]) -> int | None:
    """The email id a bounce address names, or None if it is not ours or its signature is wrong."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    base_local, _, base_domain = return_path.rpartition("@")
    head, plus, tag = local.rpartition("+")
    if not plus or head.lower() != base_local.lower() or domain.lower() != base_domain.lower():
        return None
    match = _TAG.match(tag.lower())
    if match is None:
        return None
    email_id, given = int(match.group(1)), match.group(2)
    if any(hmac.compare_digest(given, _signature(key, email_id)) for key in keys):
        return email_id
    return None
