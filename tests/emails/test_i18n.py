"""Catalogs straight from .po files, locale choice with visible fallback, CLDR money and dates."""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dunning.errors import TemplateError
from dunning.i18n.catalogs import Catalogs, find_locales, load_catalog
from dunning.i18n.formats import Formats
from dunning.i18n.timezones import zone

from .conftest import LOCALES, SHIPPED_LOCALES, write_po

NNBSP, NBSP = "\u202f", "\u00a0"


def test_money_in_french_groups_with_narrow_spaces_and_puts_the_euro_after() -> None:
    """fr writes 1234.50 EUR as `1 234,50 €` with CLDR's narrow no-break space and no-break space."""
    assert Formats("fr").money(Decimal("1234.50"), "EUR") == f"1{NNBSP}234,50{NBSP}€"


def test_yen_has_no_decimals_in_japanese_and_french() -> None:
    """JPY is written without decimals, as CLDR says for ja-JP and fr."""
    assert Formats("ja_JP").money(Decimal("1500"), "JPY") == "￥1,500"
    assert Formats("fr").money(Decimal("1500"), "JPY") == f"1{NNBSP}500{NBSP}JPY"


def test_dates_follow_the_locale() -> None:
    """Long and medium dates are CLDR's for fr and ja-JP, with no-break spaces: a date never breaks at a line end."""
    day = date(2026, 11, 1)
    assert Formats("fr").date(day) == f"1er{NBSP}novembre{NBSP}2026"
    assert Formats("fr").date(day, format="medium") == f"1er{NBSP}nov.{NBSP}2026"
    assert Formats("de").date(date(2026, 1, 31)) == f"31.{NBSP}Januar{NBSP}2026"
    assert Formats("ja_JP").date(day) == "2026年11月1日"


def test_an_aware_datetime_is_shown_on_its_local_date() -> None:
    """23:30 UTC on 1 November is already 2 November in Paris."""
    moment = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    assert Formats("fr").date(moment, "Europe/Paris") == f"2{NBSP}novembre{NBSP}2026"
    assert Formats("fr").datetime(datetime(2026, 11, 4, 6, tzinfo=UTC), "Europe/Paris") \
        == f"4{NBSP}novembre{NBSP}2026, 07:00"


def test_an_instant_remembered_in_one_timezone_is_shown_on_each_timezone_s_date() -> None:
    """The same instant asked again, in its own and in other timezones: each time the date where it is asked."""
    formats, moment = Formats("en"), datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    for _ in range(2):
        assert formats.date(moment, "Europe/Paris") == f"November{NBSP}2,{NBSP}2026"
        assert formats.date(moment, "America/New_York") == f"November{NBSP}1,{NBSP}2026"
        assert formats.date(moment.astimezone(zone("Asia/Tokyo"))) == f"November{NBSP}2,{NBSP}2026"
        assert formats.date(moment) == f"November{NBSP}1,{NBSP}2026"
        assert formats.date(moment, "Europe/Paris", "short") == "11/2/26"
    with pytest.raises(ValueError, match="naive"):
        formats.date(moment.replace(tzinfo=None), "Europe/Paris")


def test_a_naive_datetime_is_refused() -> None:
    """A datetime without an offset cannot be placed in the account's timezone, so it is an error."""
    with pytest.raises(ValueError, match="naive"):
        Formats("en").date(datetime(2026, 11, 1, 12), "Europe/Paris")


def test_lists_are_joined_the_way_the_language_writes_them() -> None:
    """A list of names reads `A, B et C` in French."""
    assert Formats("fr").list(["A", "B", "C"]) == "A, B et C"


def test_available_locales_are_the_directories_with_a_catalog(tmp_path: Path) -> None:
    """A locale directory without messages.po is not a catalog."""
    write_po(tmp_path, "en", "")
    write_po(tmp_path, "fr", "")
    (tmp_path / "de" / "LC_MESSAGES").mkdir(parents=True)
    assert find_locales(tmp_path) == {"en", "fr"}
    assert find_locales(LOCALES) == set(SHIPPED_LOCALES)


def test_a_missing_catalog_falls_back_visibly(caplog: pytest.LogCaptureFixture) -> None:
    """pt-BR has no catalog: the choice says so and a warning names the locale, once."""
    catalogs = Catalogs(LOCALES, "en")
    with caplog.at_level(logging.WARNING, logger="dunning.i18n.catalogs"):
        first = catalogs.choose("pt-BR")
        catalogs.choose("pt-BR")
    assert (first.locale, first.fallback, first.lang) == ("en", True, "en")
    warnings = [r.getMessage() for r in caplog.records if "pt-BR" in r.getMessage()]
    assert len(warnings) == 1 and "'en'" in warnings[0]


def test_a_regional_locale_uses_its_language_catalog_and_keeps_its_region() -> None:
    """fr-CA is written with the fr catalog, formatted and labelled as fr-CA, and is no fallback."""
    choice = Catalogs(LOCALES, "en").choose("fr-CA")
    assert (choice.locale, choice.format_locale, choice.lang, choice.dir, choice.fallback) == \
        ("fr", "fr_CA", "fr-CA", "ltr", False)


def test_arabic_is_right_to_left() -> None:
    """ar-EG uses the ar catalog and is written right to left."""
    choice = Catalogs(LOCALES, "en").choose("ar-EG")
    assert (choice.locale, choice.lang, choice.dir) == ("ar", "ar-EG", "rtl")


def test_a_default_locale_without_catalog_is_refused(tmp_path: Path) -> None:
    """Without a catalog for the default locale every fallback would be silent English, so it is an error."""
    write_po(tmp_path, "fr", "")
    with pytest.raises(TemplateError, match="default locale 'en' has no catalog"):
        Catalogs(tmp_path, "en")


def test_fuzzy_translations_are_not_used(tmp_path: Path) -> None:
    """A fuzzy entry is left out: its msgid reads in the source language."""
    path = write_po(tmp_path, "fr", '''\
        msgid "Invoice"
        msgstr "Facture"

        #, fuzzy
        msgid "Amount due"
        msgstr "Montant"
        ''')
    translations = load_catalog(path, "fr")
    assert translations.gettext("Invoice") == "Facture"
    assert translations.gettext("Amount due") == "Amount due"


def test_an_edited_po_file_is_read_again(tmp_path: Path) -> None:
    """After a .po file changes, the next lookup sees the new translation without any compile step."""
    write_po(tmp_path, "en", "")
    path = write_po(tmp_path, "fr", 'msgid "Invoice"\nmsgstr "Facture"\n')
    catalogs = Catalogs(tmp_path, "en")
    assert catalogs.translations("fr").gettext("Invoice") == "Facture"
    path.write_text(path.read_text(encoding="utf-8").replace('"Facture"', '"Note"'), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert catalogs.translations("fr").gettext("Invoice") == "Note"


def test_a_broken_po_file_names_its_path_and_locale(tmp_path: Path) -> None:
    """A catalog that is not valid PO raises TemplateError with the file and the locale."""
    path = tmp_path / "fr" / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True)
    path.write_text('msgid "x"\nthis is not PO\n', encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        load_catalog(path, "fr")
    assert caught.value.locale == "fr" and str(path) in str(caught.value)


def test_shipped_arabic_catalog_has_six_plural_forms() -> None:
    """The Arabic catalog declares six plural forms and fills every one of them."""
    translations = load_catalog(LOCALES / "ar" / "LC_MESSAGES" / "messages.po", "ar")
    singular, plural = "Your data will be deleted in %(count)s day", "Your data will be deleted in %(count)s days"
    forms = {n: translations.ngettext(singular, plural, n) for n in (0, 1, 2, 3, 11, 100)}
    assert "أيام" in forms[3] and "يوما" in forms[11] and forms[100].endswith("يوم")
    assert all(text != singular and text != plural for text in forms.values())
