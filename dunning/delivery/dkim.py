"""DKIM signatures over the exact bytes sent (8-bit bodies included), with dkimpy.

Signing happens after the final bytes are built, for the 8-bit message and for its 7-bit fallback
alike: any later change to them would break the signature. Off by default: behind a relay that signs
for the domain, a second signature only costs time.
"""

from __future__ import annotations

from pathlib import Path

import dkim as dkimpy

from dunning.delivery.mime import CrlfBytes
from dunning.errors import DkimError
from dunning.settings import DkimSettings

__all__ = ["DkimSigner", "signer_from_settings", "SIGNED_HEADERS"]

# From must be signed; the rest are what a replay or an edit would change. Cc, Reply-To and
# List-Unsubscribe are signed where present (dkimpy leaves out any the message lacks).
SIGNED_HEADERS = (b"from", b"to", b"cc", b"reply-to", b"subject", b"date", b"message-id", b"mime-version",
                  b"content-type", b"content-language", b"list-unsubscribe", b"list-unsubscribe-post")


class DkimSigner:
    """Signs messages for one domain and selector with one private key (PEM)."""

    def __init__(self, *, selector: str, domain: str, private_key: bytes) -> None:
        self.selector, self.domain, self._key = selector.encode("ascii"), domain.encode("ascii"), private_key
        self.sign(b"From: check@" + self.domain + b"\r\nSubject: check\r\n\r\nkey check\r\n")  # fail at start

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header first; a CrlfBytes subclass keeps its class."""
        try:
            signature = dkimpy.sign(message, self.selector, self.domain, self._key,
                                    canonicalize=(b"relaxed", b"relaxed"), include_headers=list(SIGNED_HEADERS))
        except (dkimpy.DKIMException, ValueError) as exc:
            raise DkimError(f"dkim: cannot sign with the key for {self.domain.decode()}: {exc}") from None
        # The header starts with "DKIM-Signature:", never a dot: a dot-safe message stays dot-safe.
        return type(message)(signature + message) if isinstance(message, CrlfBytes) else signature + message


def signer_from_settings(settings: DkimSettings) -> DkimSigner | None:
    """The signer the settings ask for, or None when DKIM is off; the key from the environment or its file."""
    if not settings.enabled:
        return None
    if settings.private_key is not None:
        key = settings.private_key.get_secret_value().encode("ascii", "replace")
    else:
        path = Path(settings.key_file or "")
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise DkimError(f"dkim.key_file: cannot read {path}: {exc.strerror}") from None
    return DkimSigner(selector=settings.selector or "", domain=settings.domain or "", private_key=key)
