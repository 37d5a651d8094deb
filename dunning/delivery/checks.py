"""SMTP settings checked before any connection: loopback or not, plain text, AUTH, the TLS context."""

from __future__ import annotations

import ipaddress
import ssl

from dunning.errors import SettingsError
from dunning.settings import SmtpSettings

__all__ = ["is_loopback", "check_settings", "tls_context", "ssl_cause"]


def is_loopback(host: str) -> bool:
    """Whether host names this machine without DNS: localhost or a loopback address."""
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_settings(smtp: SmtpSettings, password: str | None) -> None:
    """Reject conflicting SMTP settings up front (plain text to a remote host, AUTH without password)."""
    if smtp.tls == "none" and not is_loopback(smtp.host) and not smtp.allow_plaintext_remote:
        raise SettingsError(
            f'smtp.tls = "none" would send mail{" and credentials" if smtp.username else ""} in plain '
            f'text to {smtp.host}; use smtp.tls = "starttls" or "implicit", or set '
            "smtp.allow_plaintext_remote = true if that network is trusted")
    if smtp.username and not password:
        raise SettingsError("smtp.username is set but no password: set DUNNING_SMTP__PASSWORD")
    if password and not smtp.username:
        raise SettingsError("an SMTP password is set (DUNNING_SMTP__PASSWORD) but smtp.username is not")


def tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    """A verifying client context: system CAs plus smtp.ca_file, hostname checked, TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if smtp.ca_file:
        try:
            context.load_verify_locations(cafile=smtp.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"smtp.ca_file: cannot load {smtp.ca_file}: {exc}") from None
    return context


def ssl_cause(exc: BaseException | None) -> BaseException | None:
    """The TLS error behind an exception, looking a few causes deep."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ssl.SSLError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
