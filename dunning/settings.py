"""settings.toml + DUNNING_* environment → one frozen Settings object."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dunning import defaults
from dunning.errors import SettingsError

__all__ = ["SECRET_PATHS", "Section", "DatabaseSettings", "PolicySettings", "CardChargeFailedSettings",
           "PastDueSettings", "CardExpiringSettings", "BalanceSettledSettings", "SegmentSettings",
           "ServiceCancelledSettings", "DeletionSettings", "PendingDeletionSettings", "SmtpSettings",
           "SenderSettings", "BrandingSettings", "LinksSettings", "DeliverySettings", "I18nSettings", "StudioSettings",
           "BouncesSettings", "DkimSettings", "Settings",
           "settings_path", "load_settings"]

SECRET_PATHS = (("smtp", "password"), ("links", "keys"), ("dkim", "private_key"))


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseSettings(Section):
    url: str = "sqlite:///var/dunning.sqlite3"
    batch_size: int = Field(500, gt=0)


def _strictly_increasing(values: list[int], *, decreasing: bool = False) -> list[int]:
    if not values:
        raise ValueError("must list at least one stage")
    if any(v < 0 for v in values):
        raise ValueError("days must not be negative")
    pairs = pairwise(values)
    if not all((a > b) if decreasing else (a < b) for a, b in pairs):
        raise ValueError("stages must be strictly " + ("decreasing" if decreasing else "increasing"))
    return values


class PolicySettings(Section):
    send_window: str = "08:00-20:00"

    @field_validator("send_window")
    @classmethod
    def _parse_window(cls, value: str) -> str:
        start, sep, end = value.partition("-")
        try:
            if not sep:
                raise ValueError
            first, last = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
        except ValueError:
            raise ValueError(f'not a window "HH:MM-HH:MM": {value!r}') from None
        if first >= last:
            raise ValueError("the window must start before it ends")
        return value

    @property
    def window(self) -> tuple[time, time]:
        start, _, end = self.send_window.partition("-")
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


class CardChargeFailedSettings(Section):
    max_age_days: int = Field(3, gt=0)


class PastDueSettings(Section):
    days_after_due: list[int] = [1, 7, 14]
    max_days_after_due: int = Field(60, gt=0)
    disable_after_days: int = Field(30, gt=0)

    @field_validator("days_after_due")
    @classmethod
    def _stages(cls, value: list[int]) -> list[int]:
        return _strictly_increasing(value)

    @model_validator(mode="after")
    def _last_stage_in_range(self) -> PastDueSettings:
        if self.days_after_due[-1] > self.max_days_after_due:
            raise ValueError("the last stage falls after max_days_after_due")
        return self


class ServiceCancelledSettings(Section):
    max_age_days: int = Field(7, gt=0)


class DeletionSettings(Section):
    days_after_cancel: int = Field(90, gt=0)


class PendingDeletionSettings(Section):
    days_before_deletion: list[int] = [30, 7, 1]

    @field_validator("days_before_deletion")
    @classmethod
    def _stages(cls, value: list[int]) -> list[int]:
        return _strictly_increasing(value, decreasing=True)


class CardExpiringSettings(Section):
    days_before: list[int] = [30, 7]

    @field_validator("days_before")
    @classmethod
    def _stages(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError("days must be at least 1 (the card works through the last day of its month)")
        return _strictly_increasing(value, decreasing=True)


class BalanceSettledSettings(Section):
    within_days: int = Field(30, gt=0)


class _SegmentPastDue(Section):
    days_after_due: list[int] | None = None
    disable_after_days: int | None = None


class _SegmentPendingDeletion(Section):
    days_before_deletion: list[int] | None = None


class _SegmentCardExpiring(Section):
    days_before: list[int] | None = None


class _SegmentPolicy(Section):
    send_window: str | None = None


class SegmentSettings(Section):
    """One `[segments.<name>]` section: the keys a segment may override; any other key is an error."""

    past_due: _SegmentPastDue = _SegmentPastDue()
    pending_deletion: _SegmentPendingDeletion = _SegmentPendingDeletion()
    card_expiring: _SegmentCardExpiring = _SegmentCardExpiring()
    policy: _SegmentPolicy = _SegmentPolicy()


_SEGMENT_NAME = r"[a-z0-9_-]{1,40}"


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


class DeliverySettings(Section):
    workers: int = Field(2, gt=0, le=64)
    batch_size: int = Field(500, gt=0)
    lease_seconds: int = Field(300, gt=0)
    max_attempts: int = Field(5, gt=0)
    retry_backoff_seconds: int = Field(300, gt=0)
    unknown: Literal["hold", "resend"] = "hold"
    outbox_dir: str = "var/outbox"


class I18nSettings(Section):
    default_locale: str = "en"
    locales_dir: str = "locales"
    templates_dir: str = "templates/emails"


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
    delivery: DeliverySettings = DeliverySettings()
    i18n: I18nSettings = I18nSettings()
    studio: StudioSettings = StudioSettings()
    bounces: BouncesSettings = BouncesSettings()
    dkim: DkimSettings = DkimSettings()
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
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _TomlSource(settings_cls))


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the settings file; a secret written in it is refused."""

    path: Path | None = None

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{self.path}: not valid TOML: {exc}") from None
        for section, key in SECRET_PATHS:
            if key in data.get(section, {}):
                env = f"DUNNING_{section.upper()}__{key.upper()}"
                raise SettingsError(f"{self.path}: {section}.{key}: secrets are read only from the "
                                    f"environment; remove it from the file and set {env}")
        return data


def settings_path(environ: Mapping[str, str] | None = None) -> Path:
    """The settings file: $DUNNING_SETTINGS, else ./settings.toml."""
    given = os.environ if environ is None else environ
    return Path(given.get("DUNNING_SETTINGS", "settings.toml"))


def load_settings(path: Path | None = None) -> Settings:
    """Load and validate settings; a bad value raises SettingsError naming the key's path."""
    named = path is not None or "DUNNING_SETTINGS" in os.environ
    path = settings_path() if path is None else path
    if named and not path.exists():
        # Only the implicit ./settings.toml may be absent (the built-in defaults apply).
        raise SettingsError(f"settings file {path} does not exist")
    _TomlSource.path = path
    try:
        settings = Settings()
    except ValidationError as exc:
        raise SettingsError(_describe(exc, path)) from None
    except PydanticSettingsError as exc:  # a DUNNING_* variable that should hold JSON does not
        raise SettingsError(f"{exc}: a list or table set in the environment is written as JSON, "
                            "e.g. DUNNING_PAST_DUE__DAYS_AFTER_DUE='[1, 7, 14]'") from None
    return resolve_paths(settings, path.absolute().parent if path.exists() else Path.cwd())


def resolve_paths(settings: Settings, base: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Every relative path made absolute: against `base` (the settings file's folder), or against the
    current folder when a DUNNING_* variable gave it, as any path typed in a shell.

    templates_dir and locales_dir left at their defaults fall back to the packaged ones when there is no
    such folder: a project needs its own copies only to change them.
    """
    environ = os.environ if environ is None else environ

    def path(section: str, key: str) -> Path:
        given = environ.get(f"DUNNING_{section.upper()}__{key.upper()}") is not None
        return (Path.cwd() if given else base) / getattr(getattr(settings, section), key)

    def folder(key: str, packaged: Path) -> str:
        found = path("i18n", key)
        at_default = getattr(settings.i18n, key) == I18nSettings.model_fields[key].default
        return str(packaged if at_default and not found.is_dir() else found)

    smtp, database = settings.smtp, settings.database
    given_url = environ.get("DUNNING_DATABASE__URL") is not None
    return settings.model_copy(update={
        "i18n": settings.i18n.model_copy(update={"templates_dir": folder("templates_dir", defaults.templates_dir()),
                                                 "locales_dir": folder("locales_dir", defaults.locales_dir())}),
        "delivery": settings.delivery.model_copy(update={"outbox_dir": str(path("delivery", "outbox_dir"))}),
        "smtp": smtp.model_copy(update={"ca_file": smtp.ca_file and str(path("smtp", "ca_file"))}),
        "database": database.model_copy(update={
            "url": _database_url(database.url, Path.cwd() if given_url else base)}),
    })


def _database_url(url: str, base: Path) -> str:
    """A SQLite URL's relative file made absolute; any other URL as it is."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # store.connect names the bad URL
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
        return url
    return parsed.set(database=str(base / name)).render_as_string(hide_password=False)


def _describe(exc: ValidationError, path: Path) -> str:
    lines = [f"invalid settings ({path} and DUNNING_* environment):"]
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        shown = "(hidden)" if loc[:2] in SECRET_PATHS else repr(error.get("input"))
        lines.append(f"  {'.'.join(loc) or '(root)'}: {error['msg']} (got {shown})")
    return "\n".join(lines)
