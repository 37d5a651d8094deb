"""The [stripe] section: where the Stripe API is, and the metadata keys for what Stripe has no field for."""

from __future__ import annotations

from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from dunning.settings.section import Section

__all__ = ["StripeMetadataKeys", "StripeSettings"]


class StripeMetadataKeys(Section):
    """The Customer metadata keys that carry what Stripe has no field for."""

    timezone: str = "timezone"
    segment: str = "dunning_segment"
    paused_until: str = "dunning_paused_until"
    cc: str = "dunning_cc"


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class StripeSettings(Section):
    api_base: str = "https://api.stripe.com"
    api_version: str = "2024-06-20"
    default_timezone: str = "UTC"
    metadata: StripeMetadataKeys = StripeMetadataKeys()
    webhook_tolerance_seconds: int = Field(300, gt=0)
    max_network_retries: int = Field(2, ge=0, le=10)
    concurrency: int = Field(8, gt=0, le=32)
    api_key: SecretStr | None = None
    webhook_secret: SecretStr | None = None

    @field_validator("api_base")
    @classmethod
    def _tls_unless_loopback(cls, value: str) -> str:
        parts = urlsplit(value)
        if not parts.hostname or not (parts.scheme == "https" or
                                      (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)):
            raise ValueError("must be an https:// URL (plain http only for a test server on loopback)")
        return value.rstrip("/")

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone: {value!r}") from None
        return value
