"""Translation catalogs read straight from .po files, and the locale an email is written in."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import Translations

from dunning.errors import TemplateError
from dunning.i18n.locales import negotiate, written_locale
from dunning.i18n.po_syntax import refuse_malformed

__all__ = ["CATALOG_PATH", "LocaleChoice", "catalog_path", "find_locales", "load_catalog", "Catalogs"]

log = logging.getLogger(__name__)

CATALOG_PATH = Path("LC_MESSAGES") / "messages.po"


@dataclass(frozen=True, slots=True)
class LocaleChoice:
    """The catalog chosen for a requested locale, and how the email is labelled and formatted."""

    requested: str       # as given: "fr-FR", "pt_BR", "ja-JP"
    locale: str          # catalog locale, Babel form: "fr"
    format_locale: str   # numbers and dates: the requested region when its language has the catalog
    lang: str            # BCP 47 for <html lang> and Content-Language: "fr-FR"
    dir: str             # "ltr" | "rtl"

    @property
    def fallback(self) -> bool:
        """True when the requested language has no catalog and another language is used."""
        return written_locale(self.requested, self.locale) is None


def catalog_path(locales_dir: Path, locale: str) -> Path:
    """Where a locale's catalog lives: locales/<locale>/LC_MESSAGES/messages.po."""
    return locales_dir / locale / CATALOG_PATH


def find_locales(locales_dir: Path) -> frozenset[str]:
    """Babel-form ids of the locales that have a messages.po."""
    if not locales_dir.is_dir():
        return frozenset()
    return frozenset(p.name for p in locales_dir.iterdir() if catalog_path(locales_dir, p.name).is_file())


def load_catalog(path: Path, locale: str) -> Translations:
    """A .po file as gettext translations, fuzzy entries left out (no compile step needed)."""
    return _read_catalog(path, locale)[0]


def _read_catalog(path: Path, locale: str) -> tuple[Translations, str]:
    try:
        data = path.read_bytes()
        refuse_malformed(str(path), data, str(path), locale)
        catalog = read_po(BytesIO(data), locale=locale, abort_invalid=True)
    except TemplateError:
        raise
    except (OSError, PoFileError, ValueError) as exc:
        raise TemplateError(f"{path}: cannot read catalog: {exc}", template=str(path), locale=locale) from None
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain="messages"), hashlib.sha256(data).hexdigest()


class Catalogs:
    """The catalogs under one locales directory, reloaded when a .po file changes."""

    def __init__(self, locales_dir: Path, default_locale: str = "en", *, reload_interval: float = 0.0) -> None:
        self.locales_dir = Path(locales_dir)
        self.default_locale = default_locale
        self.reload_interval = reload_interval   # seconds between checks of a .po file for changes
        self.available = find_locales(self.locales_dir)
        if default_locale not in self.available:
            raise TemplateError(f"the default locale {default_locale!r} has no catalog "
                                f"({catalog_path(self.locales_dir, default_locale)})", locale=default_locale)
        self._loaded: dict[str, _Loaded] = {}
        self._choices: dict[str, LocaleChoice] = {}

    def choose(self, requested: str) -> LocaleChoice:
        """Negotiate a catalog for a locale; a fallback to another language is logged (once) and flagged."""
        choice = self._choices.get(requested)
        if choice is None:
            choice = self._choices[requested] = self._negotiate(requested)
            if choice.fallback:
                log.warning("no catalog for locale %r: emails fall back to %r", requested, choice.locale)
        return choice

    def _negotiate(self, requested: str) -> LocaleChoice:
        locale = negotiate(requested, self.available, self.default_locale)
        format_locale = written_locale(requested, locale) or locale
        parsed = Locale.parse(format_locale)
        return LocaleChoice(requested=requested, locale=locale, format_locale=format_locale,
                            lang=format_locale.replace("_", "-"), dir=parsed.text_direction)

    def translations(self, locale: str) -> Translations:
        """The current translations of an available locale (re-read when its .po changed)."""
        return self._current(locale).translations

    def current(self, locale: str) -> tuple[Translations, str]:
        """The current translations of an available locale and the SHA-256 of the .po file they were read from."""
        loaded = self._current(locale)
        return loaded.translations, loaded.digest

    def _current(self, locale: str) -> _Loaded:
        loaded, now = self._loaded.get(locale), time.monotonic()
        if loaded is not None and now - loaded.checked < self.reload_interval:
            return loaded
        path = catalog_path(self.locales_dir, locale)
        try:
            stat = os.stat(path)
        except OSError:
            raise TemplateError(f"no catalog for locale {locale!r}: {path}", locale=locale) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if loaded is None or loaded.stamp != stamp:
            loaded = self._loaded[locale] = _Loaded(stamp, *_read_catalog(path, locale), now)
        loaded.checked = now
        return loaded


@dataclass(slots=True)
class _Loaded:
    stamp: tuple[int, int]
    translations: Translations
    digest: str
    checked: float
