"""Translation catalogs read straight from .po files, the locale an email is written in, Babel formatting."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any, Callable

from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format
from babel.lists import format_list
from babel.messages.pofile import PoFileError, read_po
from babel.messages.mofile import write_mo
from babel.numbers import (format_currency, get_currency_precision, get_currency_symbol, get_decimal_quantum,
                           get_decimal_symbol, get_group_symbol)
from babel.support import Translations

from dunning.errors import TemplateError
from dunning.i18n.locales import negotiate, normalize
from dunning.i18n.timezones import zone

log = logging.getLogger(__name__)

CATALOG_PATH = Path("LC_MESSAGES") / "messages.po"
_MEMO_LIMIT = 20_000  # formatted values kept per locale; plan prices and due dates repeat a lot
_QUOTED = re.compile(r"'([^']*)'")
# Amounts the precomputed currency format must write exactly as Babel does before it is trusted.
_PROBES = tuple(Decimal(v) for v in ("-0", "0.005", "1234.5", "-1234567.891", "99999999.995"))


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
        requested = normalize(self.requested)
        return requested is None or requested.split("_")[0] != self.locale.split("_")[0]


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
        catalog = read_po(BytesIO(data), locale=locale, abort_invalid=True)
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
        wanted = normalize(requested)
        same_language = wanted is not None and wanted.split("_")[0] == locale.split("_")[0]
        format_locale = wanted if same_language else locale
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


class Formats:
    """Money, dates and lists the way CLDR writes them in one locale (results memoized)."""

    def __init__(self, locale: str) -> None:
        self.locale = Locale.parse(locale)
        self._memo: dict[tuple[Any, ...], str] = {}
        self._currencies: dict[str, Callable[[Decimal], str]] = {}

    def _remember(self, key: tuple[Any, ...], value: str) -> str:
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = value
        return value

    def money(self, amount: Decimal | int | str, currency: str) -> str:
        """`1 234,50 €` in fr, `€1,234.50` in en; the currency's own number of decimals (JPY: none)."""
        key = ("money", amount, currency)
        found = self._memo.get(key)
        if found is None:
            write = self._currencies.get(currency)
            if write is None:
                write = self._currencies[currency] = currency_writer(self.locale, currency)
            found = self._remember(key, write(Decimal(amount)))
        return found

    def date(self, value: date | datetime, timezone: str | None = None, format: str = "long") -> str:
        """A calendar date (`1 novembre 2026`); an aware datetime is first taken to the timezone."""
        if isinstance(value, datetime):
            value = _local(value, timezone).date()
        key = ("date", value, format)
        found = self._memo.get(key)
        if found is None:
            found = self._remember(key, _ordinal_first(format_date(value, format, locale=self.locale), value,
                                                        self.locale, format))
        return found

    def datetime(self, value: datetime, timezone: str | None = None, format: str = "long") -> str:
        """A date and a short time in the timezone: `November 4, 2026 at 7:00 AM`."""
        local = _local(value, timezone)
        pattern = get_datetime_format(format, locale=self.locale)
        time_text = format_time(local, "short", locale=self.locale)
        return pattern.replace("'", "").replace("{0}", time_text).replace("{1}", self.date(local, None, format))

    def list(self, items: list[str]) -> str:
        """`A, B et C`: items joined the way the language writes a list."""
        if len(items) < 2:   # as format_list does, without its locale lookup
            return items[0] if items else ""
        key = ("list", *items)
        found = self._memo.get(key)
        if found is None:
            found = self._remember(key, format_list(list(items), locale=self.locale))
        return found


_FIRST_OF_MONTH = re.compile(r"(?<!\d)1(?=[ \u00a0\u202f][^\d\s])")


def _ordinal_first(text: str, value: date, locale: Locale, format: str) -> str:
    """French writes the first of the month as an ordinal: "1er décembre 2026", never "1 décembre"."""
    if value.day != 1 or locale.language != "fr" or format == "short":
        return text
    return _FIRST_OF_MONTH.sub("1er", text, count=1)


def currency_writer(locale: Locale, currency: str) -> Callable[[Decimal], str]:
    """format_currency(value, currency, locale=locale) with the pattern and symbols looked up once.

    Babel finds the pattern, symbols and currency name again for every amount; this does the same
    steps with them kept. Patterns it does not mirror (scientific, significant digits, currency
    names) and any locale whose probes come out differently keep using Babel itself.
    """
    def babel(value: Decimal) -> str:
        return format_currency(value, currency, locale=locale)

    pattern = locale.currency_formats["standard"]
    group = get_group_symbol(locale, numbering_system="latn")
    point = get_decimal_symbol(locale, numbering_system="latn")
    affixes = [pattern.prefix[i] + "\0" + pattern.suffix[i] for i in (0, 1)]
    if (not isinstance(currency, str) or pattern.exp_prec or pattern.scale or "@" in pattern.pattern
            or pattern.number_pattern == "" or any("¤¤¤" in a or a.count("\0") != 1 for a in affixes)
            or any(c in group + point for c in "'¤\0")):
        return babel
    symbol = get_currency_symbol(currency, locale)
    # As apply() treats prefix + number + suffix, with the number held by a NUL it never contains.
    sides = [_QUOTED.sub(lambda m: m.group(1) or "'", a.replace("¤¤", currency.upper()).replace("¤", symbol))
             .partition("\0")[::2] for a in affixes]
    fast = _number_writer(pattern, get_currency_precision(currency), group, point, sides, babel)
    return fast if all(fast(v) == babel(v) for v in _PROBES) else babel


def _number_writer(pattern: Any, digits: int, group: str, point: str, sides: list[tuple[str, str]],
                   babel: Callable[[Decimal], str]) -> Callable[[Decimal], str]:
    """NumberPattern.apply's steps for a finite amount with the currency's digits."""
    quantum, (first, other), least = get_decimal_quantum(digits), pattern.grouping, pattern.int_prec[0]

    def fast(value: Decimal) -> str:
        if not value.is_finite():
            return babel(value)
        before, after = sides[value.is_signed()]
        whole, _, fraction = f"{abs(value).normalize().quantize(quantum):f}".partition(".")
        whole = whole.rjust(least, "0")
        grouped, size = "", first
        while len(whole) > size:
            grouped, whole, size = group + whole[-size:] + grouped, whole[:-size], other
        return f"{before}{whole}{grouped}{point + fraction.ljust(digits, '0') if digits else ''}{after}"

    return fast


def _local(value: datetime, timezone: str | None) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: datetimes in the context must be aware")
    return value.astimezone(zone(timezone)) if timezone else value
