"""Locale: the account's locale, else its language, else the default; the plan says which was used."""

from __future__ import annotations

import pytest

from dunning.planning.policy import choose_locale
from dunning.settings import Settings

from .builders import account, plan_of


@pytest.mark.parametrize("requested, available, catalog, locale, fallback", [
    pytest.param("pt-BR", {"en", "pt_BR", "pt"}, "pt_BR", "pt-BR", False, id="pt-BR-own-catalog"),
    pytest.param("pt-BR", {"en", "pt"}, "pt", "pt-BR", False, id="pt-BR-falls-back-to-pt"),
    pytest.param("pt-BR", {"en"}, "en", "en", True, id="pt-BR-falls-back-to-the-default"),
    pytest.param("fr-FR", {"en", "fr"}, "fr", "fr-FR", False, id="fr-FR-from-the-fr-catalog"),
    pytest.param("sv_SE", {"en", "sv"}, "sv", "sv-SE", False, id="underscore-form-accepted"),
    pytest.param("ar-EG", {"en", "ar"}, "ar", "ar-EG", False, id="arabic"),
    pytest.param("ja-JP", {"en", "fr"}, "en", "en", True, id="unsupported-language"),
    pytest.param("en-GB", {"en"}, "en", "en-GB", False, id="regional-english"),
])
def test_fallback_chain(requested, available, catalog, locale, fallback):
    """The catalog follows pt-BR → pt → default; the email keeps the account's tag while the language holds."""
    assert choose_locale(requested, frozenset(available), "en") == (catalog, locale, fallback)


def test_plan_reports_the_locale_used_and_the_fallback():
    """A planned notice names the requested locale, the catalog and locale used, and whether it fell back."""
    (planned,) = plan_of(account(locale="pt-BR", tz="America/Sao_Paulo"), "2026-11-02T12:00:00Z",
                         locales=frozenset({"en", "fr"}))
    assert (planned.requested_locale, planned.catalog, planned.locale, planned.locale_fallback) == (
        "pt-BR", "en", "en", True)


def test_default_locale_comes_from_settings():
    """With no catalog for the account's language, the configured default locale is used."""
    settings = Settings(i18n={"default_locale": "fr"})
    (planned,) = plan_of(account(locale="ja-JP"), "2026-11-02T09:00:00Z", settings=settings,
                         locales=frozenset({"en", "fr"}))
    assert (planned.catalog, planned.locale, planned.locale_fallback) == ("fr", "fr", True)
