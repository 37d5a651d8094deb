"""Who a test email may go to: only the addresses and domains listed in studio.test_recipients."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dunning.delivery.mime import envelope_address
from dunning.errors import MessageError, RecipientRefused
from dunning.settings import load_settings

__all__ = ["RecipientRefused", "check_recipient", "Recipients"]


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


class Recipients:
    """studio.test_recipients, read again from the settings file whenever it changes (no restart needed)."""

    def __init__(self, allowed: Sequence[str], settings_file: Path | None = None) -> None:
        self.allowed = list(allowed)
        self.settings_file = settings_file
        self._stamp = _stamp(settings_file) if settings_file else None

    def current(self) -> list[str]:
        """The allowed addresses and domains as the settings file lists them now (SettingsError if it is broken)."""
        if self.settings_file is not None:
            stamp = _stamp(self.settings_file)
            if stamp != self._stamp:
                self.allowed = list(load_settings(self.settings_file).studio.test_recipients)
                self._stamp = stamp
        return self.allowed


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
