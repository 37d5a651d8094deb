"""Subject lines say what happened, in every locale: no amount, no currency, no Arabic short vowels."""

from __future__ import annotations

import re

import pytest

from dunning.emails.render import Renderer

from .conftest import SHIPPED_LOCALES, scenario_names

CASES = [(name, locale) for name in scenario_names() for locale in SHIPPED_LOCALES]
CURRENCY = re.compile(r"[$€£¥₹₩₽₺₪]|\b(?:USD|EUR|GBP|JPY|SEK|CHF|US|R)\b")
ARABIC_MARKS = re.compile("[\u064b-\u0652\u0670]")


@pytest.mark.parametrize(("name", "locale"), CASES, ids=[f"{n}-{loc}" for n, loc in CASES])
def test_subjects_hold_no_amount_nor_currency(shipped_renderer: Renderer, scenario, name: str, locale: str) -> None:
    """No subject holds a currency symbol or code, or any amount of the balance (those go to the preheader)."""
    context = scenario(name)
    email = shipped_renderer.render(context["notice"], locale, context)
    assert not CURRENCY.search(email.subject), email.subject
    assert not re.search(r"\d[,.\u00a0\u202f]\d", email.subject), email.subject   # no amount: 1,234.50 or 54 000


@pytest.mark.parametrize("name", scenario_names())
def test_arabic_subjects_have_no_short_vowel_marks(shipped_renderer: Renderer, scenario, name: str) -> None:
    """Arabic subjects are written without diacritics (spam filters read them as mixed charsets)."""
    context = scenario(name)
    assert not ARABIC_MARKS.search(shipped_renderer.render(context["notice"], "ar", context).subject)


def test_rtl_values_are_isolated_in_both_parts(shipped_renderer: Renderer, scenario) -> None:
    """In Arabic, amounts and invoice ids are left-to-right units: a dir="ltr" span in HTML, LRI…PDI in text."""
    context = scenario("card_charge_failed--declined-jpy-escaping")
    email = shipped_renderer.render(context["notice"], "ar", context)
    invoice = context["invoices"][0]["id"]
    assert f'<span dir="ltr">{invoice}</span>' in email.html
    assert f"\u2066{invoice}\u2069" in email.text
    assert re.search("\u2066[^\u2069]*JP¥\u2069", email.text)
    assert "\u2066" not in shipped_renderer.render(context["notice"], "fr", context).text
