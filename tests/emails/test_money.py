"""Money written with the currency pattern looked up once: always exactly what Babel's format_currency writes."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from types import FrameType

import pytest
from babel import Locale
from babel.lists import format_list
from babel.numbers import format_currency
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.i18n.formats import Formats, currency_writer

from .conftest import SHIPPED_LOCALES

# Shipped catalogs, regions the sample accounts use, and patterns unlike theirs: Indian grouping (en_IN),
# an apostrophe group symbol (de_CH), a currency sign before a negative number (nl_NL), RTL marks (fa_IR, he).
LOCALES = (*SHIPPED_LOCALES, "fr_FR", "ar_EG", "ja_JP", "pt_BR", "en_IN", "de_CH", "nl_NL", "fa_IR", "he", "sw")
# Two, zero, three and four decimals; a code CLDR does not know.
CURRENCIES = ("EUR", "USD", "JPY", "SEK", "EGP", "BHD", "CLF", "INR", "XYZ")
AMOUNTS = st.decimals(min_value=-10**15, max_value=10**15, allow_nan=False, allow_infinity=False, places=6) | \
    st.integers(-10**12, 10**12).map(lambda n: Decimal(n).scaleb(-2))


def babel(amount: Decimal, currency: str, locale: str) -> str:
    """format_currency in the locale's default numbering system, its spaces no-break, a code spaced from
    its digits (CLDR's currencySpacing) and the digits of that numbering system."""
    formats = Formats(locale)
    text = format_currency(amount, currency, locale=locale, numbering_system=formats.numbering).replace(" ", "\u00a0")
    text = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", "\u00a0", text)
    return text.translate(formats.digits) if formats.digits else text


@settings(max_examples=600, deadline=None)
@given(locale=st.sampled_from(LOCALES), currency=st.sampled_from(CURRENCIES), amount=AMOUNTS)
def test_money_is_written_exactly_as_babel_writes_it(locale: str, currency: str, amount: Decimal) -> None:
    """For any amount, locale and currency, Formats.money equals babel.numbers.format_currency, unbreakable."""
    assert Formats(locale).money(amount, currency) == babel(amount, currency, locale)


def test_a_currency_code_is_spaced_from_its_amount_and_never_broken() -> None:
    """English writes "SEK 4,500.00" (CLDR's currency spacing), with a no-break space; a sign keeps touching."""
    assert Formats("en").money("4500", "SEK") == "SEK\u00a04,500.00"
    assert Formats("en").money("4500", "USD") == "$4,500.00"
    assert " " not in Formats("fr").money("1234.5", "EUR") + Formats("sv").money("4500", "SEK")


def test_arabic_digits_follow_the_locale_unless_latin_is_chosen() -> None:
    """ar_EG writes Arabic-Indic digits (CLDR's default there), ar Latin ones; latin_digits forces Latin."""
    assert Formats("ar_EG").money("4500", "EGP").count("٤") == 1
    assert Formats("ar_EG").date(date(2026, 1, 31)) == "٣١\u00a0يناير\u00a0٢٠٢٦"
    assert Formats("ar_EG").number(12) == "١٢"
    assert Formats("ar").date(date(2026, 1, 31)) == "31\u00a0يناير\u00a02026"
    latin = Formats("ar_EG", latin_digits=True)
    assert latin.date(date(2026, 1, 31)) == "31\u00a0يناير\u00a02026" and "4" in latin.money("4500", "EGP")


@pytest.mark.parametrize("amount", ["0", "-0", "0.005", "0.015", "-0.004", "999999.995", "1E+6", "12", "-7.5"])
@pytest.mark.parametrize("locale", LOCALES)
def test_rounding_signs_and_exponents_match_babel(locale: str, amount: str) -> None:
    """Half-even rounding, negative zero, tiny negatives and exponent notation come out as Babel's."""
    for currency in ("EUR", "JPY", "BHD"):
        assert Formats(locale).money(Decimal(amount), currency) == babel(Decimal(amount), currency, locale), currency


def test_amounts_given_as_text_or_integers_are_written_like_decimals() -> None:
    """`"1234.5"` and `1234` format as Decimal("1234.5") and Decimal(1234) do."""
    formats = Formats("de")
    assert formats.money("1234.5", "EUR") == babel(Decimal("1234.5"), "EUR", "de")
    assert formats.money(1234, "EUR") == babel(Decimal(1234), "EUR", "de")


def test_infinity_is_left_to_babel() -> None:
    """A non-finite amount takes Babel's own path and gets its infinity sign."""
    write = currency_writer(Locale.parse("fr"), "EUR")
    assert write(Decimal("Infinity")) == format_currency(Decimal("Infinity"), "EUR", locale="fr")


def test_lists_of_none_one_or_two_items_match_babel() -> None:
    """An empty list is empty, one item stands alone, two use the language's pair pattern."""
    for locale in LOCALES:
        formats = Formats(locale)
        assert formats.list([]) == ""
        assert formats.list(["A"]) == format_list(["A"], locale=locale) == "A"
        assert formats.list(["A", "B"]) == format_list(["A", "B"], locale=locale)


@pytest.mark.parametrize(("locale", "numbering"), [*((locale, "latn") for locale in SHIPPED_LOCALES),
                                                    ("ar_EG", "arab"), ("fa_IR", "arabext")])
def test_a_new_amount_is_written_without_babel(locale: str, numbering: str) -> None:
    """Amounts never seen before are written without Babel's per-amount lookups (format_currency, the pattern's
    apply), in a numbering system of other symbols (ar_EG's `٬` and `٫`) as in Latin's, and as Babel writes them."""
    write = currency_writer(Locale.parse(locale), "EUR", numbering)
    amounts = [Decimal(n).scaleb(-2) for n in range(100_000, 100_300)]
    assert babel_calls(lambda: [write(amount) for amount in amounts]) == set()
    assert [write(amount) for amount in amounts[::30]] == \
        [format_currency(amount, "EUR", locale=locale, numbering_system=numbering) for amount in amounts[::30]]


def test_odd_currency_codes_are_written_as_babel_writes_them() -> None:
    """A lowercase code, an unknown one and no code at all come out as format_currency's."""
    for currency in ("eur", "QQQ", None):
        assert Formats("fr").money(Decimal("-1234.5"), currency) == \
            format_currency(Decimal("-1234.5"), currency, locale="fr")


@pytest.mark.parametrize(("locale", "currency"), [("sv_SE", "SEK"), ("en", "SEK"), ("ar_EG", "EGP"), ("fr", "EUR")])
def test_a_new_amount_as_shown_is_written_without_babel(locale: str, currency: str) -> None:
    """Formats.money of amounts never seen before (spaces no-break, a code spaced from its digits, the locale's
    digits) calls nothing of Babel's per amount: the pattern's constant parts are finished once."""
    formats = Formats(locale)
    formats.money(Decimal("1"), currency)  # the writer made (Babel's lookups, its probes)
    amounts = [Decimal(n).scaleb(-2) for n in range(100_000, 100_300)]
    assert babel_calls(lambda: [formats.money(amount, currency) for amount in amounts]) == set()
    assert [formats.money(amount, currency) for amount in amounts[::30]] == \
        [babel(amount, currency, locale) for amount in amounts[::30]]


def babel_calls(work: Callable[[], object]) -> set[str]:
    """The functions of Babel's modules that ran while work did (the profiler sees every Python call)."""
    seen: set[str] = set()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and "/babel/" in frame.f_code.co_filename:
            seen.add(frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return seen
