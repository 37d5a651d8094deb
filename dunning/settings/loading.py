"""settings.toml + DUNNING_* environment → one frozen Settings object; relative paths made absolute."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings import SettingsError as PydanticSettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dunning import defaults
from dunning.errors import SettingsError
from dunning.settings.model import SECRET_PATHS, I18nSettings, Settings

__all__ = ["settings_path", "load_settings", "resolve_paths"]


class _TomlFile(PydanticBaseSettingsSource):
    """Reads the settings file at path; a secret written in it is refused."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: __call__ reads the whole file."""
        return None, field_name, False  # pragma: no cover

    def __call__(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data: dict[str, Any] = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{self.path}: not valid TOML: {exc}") from None
        except IsADirectoryError:
            raise SettingsError(f"{self.path}: is a directory, not a settings file") from None
        except OSError as exc:
            raise SettingsError(f"{self.path}: cannot read the settings file: {exc.strerror}") from None
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
    # The environment overrides the file.
    sources = (EnvSettingsSource(Settings), _TomlFile(Settings, path))
    try:
        settings = Settings(_build_sources=(sources, {}))
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
        value: str = getattr(getattr(settings, section), key)
        return (Path.cwd() if given else base) / value

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
        "bounces": settings.bounces.model_copy(update={"unparsed": str(path("bounces", "unparsed"))}),
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
