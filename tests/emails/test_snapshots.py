"""Snapshots of every shipped notice × locale × scenario: subject, preheader and text part; normalized HTML.

Review the files under __snapshots__/test_snapshots/ when a template or a catalog changes, and
update them with `pytest tests/emails --snapshot-update`.
"""

from __future__ import annotations

import pytest

from dunning.emails.render import Renderer

from .conftest import SHIPPED_LOCALES, HtmlSnapshot, TextSnapshot, normalize_html, scenario_names

CASES = [(name, locale) for name in scenario_names() for locale in SHIPPED_LOCALES]
IDS = [f"{name}-{locale}" for name, locale in CASES]


def _render(renderer: Renderer, scenario, name: str, locale: str):
    context = scenario(name)
    return renderer.render(context["notice"], locale, context)


@pytest.mark.parametrize(("name", "locale"), CASES, ids=IDS)
def test_text_part(shipped_renderer: Renderer, scenario, snapshot, name: str, locale: str) -> None:
    """The subject, preheader, language and text part of each email are exactly as reviewed."""
    email = _render(shipped_renderer, scenario, name, locale)
    shown = (f"Subject: {email.subject}\nPreheader: {email.preheader}\nLanguage: {email.lang} ({email.dir})\n"
             f"\n{email.text}")
    assert shown == snapshot(extension_class=TextSnapshot)


@pytest.mark.parametrize(("name", "locale"), CASES, ids=IDS)
def test_html_part(shipped_renderer: Renderer, scenario, snapshot, name: str, locale: str) -> None:
    """The HTML part of each email, indentation aside, is exactly as reviewed."""
    email = _render(shipped_renderer, scenario, name, locale)
    assert normalize_html(email.html) == snapshot(extension_class=HtmlSnapshot)
