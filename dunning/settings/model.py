"""The Settings object: every section of settings.toml, and each segment's policy resolved at start."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from dunning.settings.policy import (
    BalanceSettledSettings,
    CardChargeFailedSettings,
    CardExpiringSettings,
    DeletionSettings,
    PastDueSettings,
    PendingDeletionSettings,
    PolicySettings,
    SegmentSettings,
    ServiceCancelledSettings,
)
from dunning.settings.section import Section
from dunning.settings.stripe import StripeSettings

__all__ = ["SECRET_PATHS", "DatabaseSettings", "SmtpSettings", "SenderSettings", "BrandingSettings", "LinksSettings",
           "ServeSettings", "ReportSettings", "DeliverySettings", "I18nSettings", "StudioSettings", "BouncesSettings",
           "DkimSettings",
           "Settings"]

SECRET_PATHS = (("smtp", "password"), ("links", "keys"), ("dkim", "private_key"), ("stripe", "api_key"),
                ("stripe", "webhook_secret"))
_SEGMENT_NAME = r"[a-z0-9_-]{1,40}"
Source = PydanticBaseSettingsSource


class DatabaseSettings(Section):
    url: str = "sqlite:///var/dunning.sqlite3"
    batch_size: int = Field(500, gt=0)
    max_line_bytes: int = Field(16 * 1024 * 1024, gt=0)

class SmtpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8025, gt=0, lt=65536)
    tls: Literal["none", "starttls", "implicit"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    allow_plaintext_remote: bool = False
    connect_timeout: float = Field(10.0, gt=0)
    command_timeout: float = Field(30.0, gt=0)
    data_timeout: float = Field(60.0, gt=0)
    concurrency: int = Field(4, gt=0, le=64)
    messages_per_connection: int = Field(500, gt=0)
    idle_seconds: float = Field(30.0, gt=0)
    max_consecutive_connection_errors: int = Field(5, gt=0)
    reconnect_seconds: float = Field(60.0, ge=0)
    ehlo_name: str | None = Field(None, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$")
    ca_file: str | None = None
    pipelining: bool = True
    eight_bit: bool = True


class SenderSettings(Section):
    from_address: str = "billing@example.com"
    from_name: str = "Example Cloud Billing"
    reply_to: str | None = "support@example.com"


class BrandingSettings(Section):
    company: str = "Example Cloud"
    address: str = "1 Example Street, 75001 Paris, France"
    support_url: str = "https://example.com/support"
    logo_url: str = "https://example.com/logo.png"


class LinksSettings(Section):
    settlement_url: str = "https://billing.example.com/settle/{token}"
    update_url: str = "https://billing.example.com/payment-method/{token}"
    max_age_days: int = Field(45, gt=0)
    keys: SecretStr | None = None

    # Where `dunning serve` sends a valid link: templates over the {account}, {payment_method} and {email} ids.
    pay_url: str = "https://billing.example.com/pay/{account}?payment_method={payment_method}"
    card_update_url: str = "https://billing.example.com/payment-method/{account}/{payment_method}/edit"
    # Shown on the expired-link page as another way to pay; None shows the support page alone.
    portal_url: str | None = None

    @field_validator("pay_url", "card_update_url", "portal_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value

    @field_validator("settlement_url", "update_url")
    @classmethod
    def _has_token(cls, value: str) -> str:
        if "{token}" not in value:
            raise ValueError("must contain {token}")
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value

    @property
    def key_list(self) -> list[str]:
        raw = self.keys.get_secret_value() if self.keys else ""
        return [key.strip() for key in raw.split(",") if key.strip()]


class ServeSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # The path the routes answer under behind a reverse proxy, e.g. "/billing" for /billing/settle/{token}.
    prefix: str = ""

    @field_validator("prefix")
    @classmethod
    def _path(cls, value: str) -> str:
        if value and (not value.startswith("/") or value.endswith("/")):
            raise ValueError('a path starting with "/" and not ending with one, e.g. "/billing", or ""')
        return value


class ReportSettings(Section):
    # A settlement counts for an email sent at most this many days before it.
    window_days: int = Field(30, gt=0)


class DeliverySettings(Section):
    workers: int = Field(2, gt=0, le=64)
    batch_size: int = Field(500, gt=0)
    lease_seconds: int = Field(300, gt=0)
    max_attempts: int = Field(5, gt=0)
    retry_backoff_seconds: int = Field(300, gt=0)
    unknown: Literal["hold", "resend"] = "hold"
    outbox_dir: str = "var/outbox"
    max_message_bytes: int = Field(10 * 1024 * 1024, gt=0)


class I18nSettings(Section):
    default_locale: str = "en"
    locales_dir: str = "locales"
    templates_dir: str = "templates/emails"
    # Numbers in Latin digits even where the locale writes others by default (ar-EG: Arabic-Indic).
    latin_digits: bool = False
    render_seconds: float = Field(10.0, gt=0)


_TEST_RECIPIENT = re.compile(r"[^@\s]*@[^@\s.][^@\s]*\Z")


class StudioSettings(Section):
    # Who `dunning studio` may send a test to: addresses ("you@example.com") or whole domains ("@example.com").
    test_recipients: list[str] = []

    @field_validator("test_recipients")
    @classmethod
    def _addresses_or_domains(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _TEST_RECIPIENT.match(value.strip()):
                raise ValueError(f'not an address ("you@example.com") or a domain ("@example.com"): {value!r}')
        return [value.strip().lower() for value in values]


class BouncesSettings(Section):
    # The envelope sender's mailbox: MAIL FROM becomes <local>+<email id>.<signature>@<domain> (VERP).
    # None keeps MAIL FROM the sender's From address and leaves bounces unmatched.
    return_path: str | None = None
    soft_limit: int = Field(3, gt=0)
    window_days: int = Field(14, gt=0)
    unparsed: str = "var/bounces/unparsed"
    max_message_bytes: int = Field(10 * 1024 * 1024, gt=0)

    @field_validator("return_path")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value is None:
            return None
        local, at, domain = value.partition("@")
        if not at or not local or not domain or "+" in local or any(c.isspace() for c in value):
            raise ValueError(f'not a mailbox without "+" in its local part, e.g. "bounces@billing.example.com": '
                             f"{value!r}")
        return value


class DkimSettings(Section):
    enabled: bool = False
    selector: str | None = None
    domain: str | None = None
    key_file: str | None = None
    private_key: SecretStr | None = None

    @model_validator(mode="after")
    def _complete(self) -> DkimSettings:
        if self.enabled:
            missing = [name for name in ("selector", "domain") if not getattr(self, name)]
            if missing:
                raise ValueError(f"dkim is enabled but {' and '.join(missing)} is not set")
            if not self.key_file and not self.private_key:
                raise ValueError("dkim is enabled but has no key: set DUNNING_DKIM__PRIVATE_KEY or dkim.key_file")
        return self

class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUNNING_", env_nested_delimiter="__",
                                      frozen=True, extra="forbid")

    database: DatabaseSettings = DatabaseSettings()
    policy: PolicySettings = PolicySettings()
    card_charge_failed: CardChargeFailedSettings = CardChargeFailedSettings()
    past_due: PastDueSettings = PastDueSettings()
    card_expiring: CardExpiringSettings = CardExpiringSettings()
    balance_settled: BalanceSettledSettings = BalanceSettledSettings()
    service_cancelled: ServiceCancelledSettings = ServiceCancelledSettings()
    deletion: DeletionSettings = DeletionSettings()
    pending_deletion: PendingDeletionSettings = PendingDeletionSettings()
    smtp: SmtpSettings = SmtpSettings()
    sender: SenderSettings = SenderSettings()
    branding: BrandingSettings = BrandingSettings()
    links: LinksSettings = LinksSettings()
    serve: ServeSettings = ServeSettings()
    report: ReportSettings = ReportSettings()
    delivery: DeliverySettings = DeliverySettings()
    i18n: I18nSettings = I18nSettings()
    studio: StudioSettings = StudioSettings()
    bounces: BouncesSettings = BouncesSettings()
    dkim: DkimSettings = DkimSettings()
    stripe: StripeSettings = StripeSettings()
    segments: dict[str, SegmentSettings] = {}

    _by_segment: dict[str, Settings] = PrivateAttr(default_factory=dict)

    @field_validator("segments")
    @classmethod
    def _segment_names(cls, value: dict[str, SegmentSettings]) -> dict[str, SegmentSettings]:
        for name in value:
            if not re.fullmatch(_SEGMENT_NAME, name):
                raise ValueError(f"segment name {name!r} must match {_SEGMENT_NAME}")
        return value

    @model_validator(mode="after")
    def _segments_resolve(self) -> Settings:
        # Each segment's overrides are checked with the rules of the sections they override, at start.
        for name, segment in self.segments.items():
            self._by_segment[name] = self._overridden(name, segment)
        return self

    def _overridden(self, name: str, segment: SegmentSettings) -> Settings:
        update: dict[str, Any] = {}
        for section in ("past_due", "pending_deletion", "card_expiring", "policy"):
            changes = getattr(segment, section).model_dump(exclude_none=True)
            if not changes:
                continue
            base = getattr(self, section)
            try:
                update[section] = type(base).model_validate({**base.model_dump(), **changes})
            except ValidationError as exc:
                problem = exc.errors()[0]
                where = ".".join(str(part) for part in (name, section, *problem["loc"]))
                reason = problem["msg"].removeprefix("Value error, ")
                raise ValueError(f"segments.{where}: {reason}") from None
        return self.model_copy(update={**update, "segments": {}})

    def for_segment(self, name: str | None) -> Settings:
        """The settings for accounts of this segment: its overrides applied, else these settings."""
        if name is None:
            return self
        return self._by_segment.get(name, self)

    def knows_segment(self, name: str) -> bool:
        """Whether the settings have a `[segments.<name>]` section."""
        return name in self.segments

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: Source,
                                   env_settings: Source, dotenv_settings: Source,
                                   file_secret_settings: Source) -> tuple[Source, ...]:
        """Keyword arguments, then the environment (load_settings adds the settings file after them)."""
        return (init_settings, env_settings)
