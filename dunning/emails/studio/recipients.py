"""Who a test email may go to: only the addresses and domains listed in studio.test_recipients."""

from __future__ import annotations

from collections.abc import Sequence

from dunning.delivery.mime import envelope_address
from dunning.errors import MessageError, RecipientRefused

__all__ = ["RecipientRefused", "check_recipient"]


def check_recipient(address: str, allowed: Sequence[str]) -> str:
    """The address in its envelope form when studio.test_recipients lists it or its domain; else RecipientRefused."""
    typed = address.strip()
    if not allowed:
        raise RecipientRefused('no test recipients are configured: list yours in settings.toml, e.g. [studio] '
                               'test_recipients = ["you@example.com"] or ["@example.com"]')
    try:
        envelope = envelope_address(typed, "To")
    except MessageError as exc:
        raise RecipientRefused(f"not an email address: {typed!r} ({exc})") from None
    lowered = envelope.lower()
    domain = "@" + lowered.rpartition("@")[2]
    if lowered in allowed or domain in allowed:
        return envelope
    raise RecipientRefused(f"{typed} is not a test recipient: the studio sends only to the addresses and "
                           f"domains in studio.test_recipients ({', '.join(allowed)})")
