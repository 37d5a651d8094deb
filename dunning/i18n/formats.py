"""Money, dates and lists the way CLDR writes them in one locale (Babel, memoized)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format
from babel.lists import format_list
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_quantum,
    get_decimal_symbol,
    get_group_symbol,
)

from dunning.i18n.timezones import zone

__all__ = ["DateFormat", "Formats", "currency_writer"]

DateFormat = Literal["full", "long", "medium", "short"]
_MEMO_LIMIT = 20_000  # formatted values kept per locale; plan prices and due dates repeat a lot
_QUOTED = re.compile(r"'([^']*)'")
# Amounts the precomputed currency format must write exactly as Babel does before it is trusted.
_PROBES = tuple(Decimal(v) for v in ("-0", "0.005", "1234.5", "-1234567.891", "99999999.995"))


class Formats:
    """Money, dates and lists the way CLDR writes them in one locale (results memoized).

    Digits follow the locale's default numbering system (`ar_EG`: Arabic-Indic, `ar`: Latin) unless
    latin_digits is set. Spaces inside a date or an amount are no-break spaces: neither is split
    across lines ("31." / "Januar").
    """

    def __init__(self, locale: str, *, latin_digits: bool = False) -> None:
        self.locale = Locale.parse(locale)
        self.numbering = "latn" if latin_digits else self.locale.default_numbering_system
        self.digits = _DIGITS.get(self.numbering)   # None: Latin digits, the text as Babel writes it
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
                write = self._currencies[currency] = currency_writer(self.locale, currency, self.numbering,
                                                                     self._finish)
            found = self._remember(key, write(Decimal(amount)))
        return found

    def _finish(self, text: str) -> str:
        """An amount's text as it is shown: no-break, in the locale's digits."""
        return self._digits(_unbroken(text))

    def number(self, value: int) -> str:
        """A count in the locale's digits (`3`, or `٣` in ar_EG)."""
        text = str(value)
        return text.translate(self.digits) if self.digits else text

    def date(self, value: date | datetime, timezone: str | None = None, format: str = "long") -> str:
        """A calendar date (`1 novembre 2026`); an aware datetime is first taken to the timezone."""
        if isinstance(value, datetime):
            if timezone is None or value.tzinfo is None:   # the date depends on the value's own offset
                value = _local(value, timezone).date()
            else:   # the same instant is the same date in one timezone: remembered before it is converted
                moment = ("moment", value, timezone, format)
                found = self._memo.get(moment)
                return found if found is not None else self._remember(
                    moment, self.date(_local(value, timezone).date(), None, format))
        key = ("date", value, format)
        found = self._memo.get(key)
        if found is None:
            text = _ordinal_first(format_date(value, format, locale=self.locale), value, self.locale, format)
            found = self._remember(key, self._digits(text.replace(" ", "\u00a0")))
        return found

    def datetime(self, value: datetime, timezone: str | None = None, format: DateFormat = "long") -> str:
        """A date and a short time in the timezone: `November 4, 2026 at 7:00 AM`."""
        local = _local(value, timezone)
        pattern = str(get_datetime_format(format, locale=self.locale))
        time_text = self._digits(format_time(local, "short", locale=self.locale).replace(" ", "\u00a0"))
        return pattern.replace("'", "").replace("{0}", time_text).replace("{1}", self.date(local, None, format))

    def _digits(self, text: str) -> str:
        return text.translate(self.digits) if self.digits else text

    def list(self, items: list[str]) -> str:
        """`A, B et C`: items joined the way the language writes a list."""
        if len(items) < 2:   # as format_list does, without its locale lookup
            return items[0] if items else ""
        key = ("list", *items)
        found = self._memo.get(key)
        if found is None:
            found = self._remember(key, format_list(list(items), locale=self.locale))
        return found


# The digits of the numbering systems CLDR makes a default; any other system keeps Latin digits.
_DIGITS = {name: str.maketrans("0123456789", digits) for name, digits in
           {"arab": "٠١٢٣٤٥٦٧٨٩", "arabext": "۰۱۲۳۴۵۶۷۸۹", "beng": "০১২৩৪৫৬৭৮৯", "deva": "०१२३४५६७८९",
            "mymr": "၀၁၂၃၄၅၆၇၈၉"}.items()}
_CURRENCY_LETTERS = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def _unbroken(text: str) -> str:
    """Spaces as no-break spaces, and a no-break space between a currency code and its digits.

    CLDR's currencySpacing inserts U+00A0 where a currency written in letters touches the number
    ("SEK 4,500.00", never "SEK4,500.00"); Babel leaves it out.
    """
    return _CURRENCY_LETTERS.sub("\u00a0", text.replace(" ", "\u00a0"))


_FIRST_OF_MONTH = re.compile(r"(?<!\d)1(?=[ \u00a0\u202f][^\d\s])")


def _ordinal_first(text: str, value: date, locale: Locale, format: str) -> str:
    """French writes the first of the month as an ordinal: "1er décembre 2026", never "1 décembre"."""
    if value.day != 1 or locale.language != "fr" or format == "short":
        return text
    return _FIRST_OF_MONTH.sub("1er", text, count=1)


def currency_writer(locale: Locale, currency: str, numbering: str = "latn",
                    finish: Callable[[str], str] | None = None) -> Callable[[Decimal], str]:
    """format_currency(value, currency, locale=locale) with the pattern and symbols looked up once.

    Babel finds the pattern, symbols and currency name again for every amount; this does the same
    steps with them kept. Patterns it does not mirror (scientific, significant digits, currency
    names) and any locale whose probes come out differently keep using Babel itself. finish: a change
    of the text made character by character or at a letter touching a digit (Formats.money's spaces and
    digits), made once to the pattern's constant parts rather than to every amount's text.
    """
    finished = finish or _same

    def babel(value: Decimal) -> str:
        return finished(format_currency(value, currency, locale=locale, numbering_system=numbering))

    pattern = locale.currency_formats["standard"]
    # The numbering system changes the symbols only; digits are the caller's (Formats._digits), as Babel leaves them.
    group = get_group_symbol(locale, numbering_system=numbering)
    point = get_decimal_symbol(locale, numbering_system=numbering)
    affixes = [pattern.prefix[i] + "\0" + pattern.suffix[i] for i in (0, 1)]
    if (not isinstance(currency, str) or pattern.exp_prec or pattern.scale or "@" in pattern.pattern
            or pattern.number_pattern == "" or any("¤¤¤" in a or a.count("\0") != 1 for a in affixes)
            or any(c in group + point for c in "'¤\0")):
        return babel
    symbol = get_currency_symbol(currency, locale)
    # As apply() treats prefix + number + suffix, with the number held by a NUL it never contains.
    sides = [_QUOTED.sub(lambda m: m.group(1) or "'", a.replace("¤¤", currency.upper()).replace("¤", symbol))
             .partition("\0")[::2] for a in affixes]
    fast = _number_writer(pattern, get_currency_precision(currency), group, point, sides, babel, finished)
    return fast if all(fast(v) == babel(v) for v in _PROBES) else babel


def _same(text: str) -> str:
    return text


def _number_writer(pattern: Any, digits: int, group: str, point: str, sides: list[tuple[str, str]],
                   babel: Callable[[Decimal], str], finish: Callable[[str], str]) -> Callable[[Decimal], str]:
    """NumberPattern.apply's steps for a finite amount with the currency's digits, then finish."""
    quantum, (first, other), least = get_decimal_quantum(digits), pattern.grouping, pattern.int_prec[0]
    if (first, other) == (3, 3) and least == 1:
        return _grouped_writer(quantum, group, point, sides, babel, finish)

    def fast(value: Decimal) -> str:
        if not value.is_finite():
            return babel(value)
        before, after = sides[value.is_signed()]
        whole, _, fraction = f"{abs(value).normalize().quantize(quantum):f}".partition(".")
        whole = whole.rjust(least, "0")
        grouped, size = "", first
        while len(whole) > size:
            grouped, whole, size = group + whole[-size:] + grouped, whole[:-size], other
        return finish(f"{before}{whole}{grouped}{point + fraction.ljust(digits, '0') if digits else ''}{after}")

    return fast


def _grouped_writer(quantum: Decimal, group: str, point: str, sides: list[tuple[str, str]],
                    babel: Callable[[Decimal], str], finish: Callable[[str], str]) -> Callable[[Decimal], str]:
    """The same for groups of three digits: the digits grouped by format's `,`, then `,`, `.` and the digits
    replaced by the locale's at once; the sides finished beforehand, each next to a digit as in the text."""
    # The number starts and ends with a digit (at least one integer digit): finished beside a "0", then cut off.
    ends = [(finish(before + "0")[:-1], finish("0" + after)[1:]) for before, after in sides]
    table = str.maketrans({",": finish(group), ".": finish(point),
                           **{digit: finish(digit) for digit in "0123456789"}})
    if all(isinstance(value, str) and value == chr(key) for key, value in table.items()):
        table = {}   # the symbols and digits stay as format writes them: no translate

    def fast(value: Decimal) -> str:
        if not value.is_finite():
            return babel(value)
        before, after = ends[value.is_signed()]
        number = format(abs(value).normalize().quantize(quantum), ",f")
        return before + (number.translate(table) if table else number) + after

    return fast


def _local(value: datetime, timezone: str | None) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: datetimes in the context must be aware")
    return value.astimezone(zone(timezone)) if timezone else value
