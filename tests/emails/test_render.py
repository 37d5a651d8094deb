"""Rendering: every notice in every locale, escaping, the sandbox, plural forms, caching and reloads."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import pytest

import dunning.emails.render
from dunning.emails.limits import RenderLimits
from dunning.emails.render import Renderer
from dunning.errors import TemplateError
from dunning.settings import load_settings
from dunning.vocabulary import NOTICES

from .conftest import LOCALES, SHIPPED_LOCALES, TEMPLATES, scenario_names, visible_text

EVIL_NAME = "<script>alert(1)</script> & \"Quotes\" 'R' Us"


def _bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def copied(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the shipped templates and catalogs that a test may edit."""
    templates, locales = tmp_path / "templates", tmp_path / "locales"
    shutil.copytree(TEMPLATES, templates)
    shutil.copytree(LOCALES, locales)
    return templates, locales


@pytest.mark.parametrize("locale", SHIPPED_LOCALES)
@pytest.mark.parametrize("name", scenario_names())
def test_every_email_has_its_links_footer_and_contact_line(shipped_renderer: Renderer, scenario,
                                                           name: str, locale: str) -> None:
    """Each part carries its action link (settlement; card_expiring: payment-method update; balance_settled:
    support), the support link, the company footer and the billing contact."""
    context = scenario(name)
    email = shipped_renderer.render(context["notice"], locale, context)
    support = context["support_url"]
    action = {"card_expiring": context.get("update_url"), "balance_settled": support}.get(
        context["notice"], context["settlement_url"])
    assert f'href="{action}"' in email.html and f'href="{support}"' in email.html
    if context["notice"] in ("card_expiring", "balance_settled"):
        assert "/settle/" not in email.html + email.text   # nothing to settle: no settlement link
    # Alone on its line in every language: mail clients find a link in plain text only between spaces.
    assert f"\n{action}\n" in email.text and f"\n{support}\n" in email.text
    for part in (visible_text(email.html), email.text):
        assert context["branding"]["company"] in part and context["branding"]["address"] in part
        assert context["account"]["email"] in part
    assert email.subject and "\n" not in email.subject and email.preheader
    assert f'<html lang="{email.lang}" dir="{email.dir}"' in email.html
    assert f"<title>\n{_escaped(email.subject)}\n</title>" in email.html
    assert not email.html.startswith(".") and "\n." not in email.html  # no dot for SMTP to double


@pytest.mark.parametrize("name", scenario_names())
def test_text_part_stands_alone(shipped_renderer: Renderer, scenario, name: str) -> None:
    """The text part has no markup and no hidden preheader, and lists each invoice as an item."""
    context = scenario(name)
    email = shipped_renderer.render(context["notice"], "en", context)
    assert not re.search(r"<(a|span|br|div|strong|table|td)\b", email.text)
    assert email.preheader not in email.text
    for invoice in context["invoices"]:
        assert re.search(rf"^- {re.escape(invoice['id'])} · ", email.text, re.M)


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") \
        .replace("'", "&#39;")


def test_names_are_escaped_in_html_and_literal_in_text(shipped_renderer: Renderer, scenario) -> None:
    """A name holding <script>, & and quotes arrives escaped in the HTML, never raw, and as typed in the text."""
    context = scenario("service_cancelled--card")
    context["account"]["name"] = EVIL_NAME
    context["subscriptions"][0]["name"] = context["invoices"][0]["subscription_name"] = EVIL_NAME
    email = shipped_renderer.render("service_cancelled", "fr", context)
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Quotes&#34; &#39;R&#39; Us" in email.html
    assert f"Bonjour {EVIL_NAME}," in email.text
    assert EVIL_NAME in email.subject


def test_a_hostile_link_cannot_leave_its_attribute(shipped_renderer: Renderer, scenario) -> None:
    """Quotes and angle brackets in a URL stay inside the href value, escaped."""
    context = scenario("past_due--stage-1-card")
    context["settlement_url"] = 'https://billing.example.com/s?a=1&b="><script>x</script>'
    email = shipped_renderer.render("past_due", "en", context)
    assert 'href="https://billing.example.com/s?a=1&amp;b=&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in email.html
    assert '"><script>' not in email.html


def test_line_breaks_in_a_name_never_reach_the_subject(shipped_renderer: Renderer, scenario) -> None:
    """A subscription name with CR/LF gives a one-line subject (no header injection)."""
    context = scenario("service_cancelled--card")
    context["subscriptions"][0]["name"] = "Pro\r\nBcc: victim@example.com"
    subject = shipped_renderer.render("service_cancelled", "en", context).subject
    assert "\r" not in subject and "\n" not in subject and "Bcc: victim@example.com" in subject


@pytest.mark.parametrize("expression", [
    "''.__class__.__mro__",
    "account.__class__",
    "cycler.__init__.__globals__",
    "invoices.append(1)",
    "account.update(name='x')",
])
def test_templates_cannot_reach_python_internals(tree, scenario, expression: str) -> None:
    """A template reaching for Python internals or mutating the context fails with TemplateError."""
    templates, locales = tree({
        "evil.mjml": f'{{% extends "_layout.mjml" %}}{{% block content %}}<mj-section><mj-column>'
                     f"<mj-text>{{{{ {expression} }}}}</mj-text></mj-column></mj-section>{{% endblock %}}",
        "evil.txt": "text",
    })
    renderer = Renderer(templates, locales)
    context = scenario("past_due--stage-1-card")
    with pytest.raises(TemplateError) as caught:
        renderer.render("evil", "en", context)
    assert caught.value.template == "evil.mjml" and caught.value.line == 1 and caught.value.locale == "en"
    assert context["invoices"][0]["id"] == "F-2026-0456" and len(context["invoices"]) == 1


def test_a_missing_catalog_falls_back_to_the_default_and_says_so(scenario,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """pt-BR has no catalog: the email is in English, reports locale "en", and a warning names pt-BR."""
    renderer = Renderer(TEMPLATES, LOCALES)
    with caplog.at_level(logging.WARNING, logger="dunning.i18n.catalogs"):
        email = renderer.render("past_due", "pt-BR", scenario("past_due--stage-1-card"))
    assert (email.locale, email.lang) == ("en", "en")
    assert email.subject.startswith("Reminder:")
    assert renderer.choose_locale("pt-BR").fallback
    assert [r.getMessage() for r in caplog.records] == ["no catalog for locale 'pt-BR': emails fall back to 'en'"]


def test_french_email_formats_money_and_dates_the_french_way(shipped_renderer: Renderer, scenario) -> None:
    """fr-FR shows 1 234,50 €, long French dates, and is labelled fr-FR."""
    context = scenario("card_charge_failed--insufficient-funds")
    email = shipped_renderer.render("card_charge_failed", "fr-FR", context)
    assert email.lang == "fr-FR" and email.locale == "fr"
    assert "Solde à régler\u00a0: 1\u202f234,50\u00a0€" in email.text
    assert "Le 1er\u00a0novembre\u00a02026, nous n’avons pas pu débiter votre carte Visa se terminant par 4242." \
        in email.text
    assert "le 4\u00a0novembre\u00a02026" in email.text


@pytest.mark.parametrize(("days", "expected"), [
    (0, "Vos données seront supprimées aujourd’hui"),
    (1, "Vos données seront supprimées demain"),
    (2, "Vos données seront supprimées dans 2 jours"),
    (7, "Vos données seront supprimées dans 7 jours"),
])
def test_french_days_left_use_the_right_plural(shipped_renderer: Renderer, scenario, days: int,
                                               expected: str) -> None:
    """pending_deletion counts days in French; the deletion day says today, the day before tomorrow."""
    context = scenario("pending_deletion--30-days")
    context["days_left"] = days
    assert shipped_renderer.render("pending_deletion", "fr", context).subject == expected


@pytest.mark.parametrize(("days", "expected"), [
    (2, "سيتم حذف بياناتك خلال يومين"),
    (7, "سيتم حذف بياناتك خلال 7 أيام"),
    (11, "سيتم حذف بياناتك خلال 11 يوما"),
    (100, "سيتم حذف بياناتك خلال 100 يوم"),
])
def test_arabic_days_left_use_the_right_plural(shipped_renderer: Renderer, scenario, days: int,
                                               expected: str) -> None:
    """pending_deletion counts days in Arabic plural forms: two, few (3–10), many (11–99), other (100…); no
    marks, and a passive subject ("سيتم حذف", never "ستحذف", which reads as an active verb without vowels)."""
    context = scenario("pending_deletion--30-days")
    context["days_left"] = days
    email = shipped_renderer.render("pending_deletion", "ar", context)
    assert email.subject == expected
    body = {11: "11 يومًا"}.get(days, expected.split("خلال ")[1])   # the body keeps its short vowels
    assert f"، أي بعد {body}،" in email.text


@pytest.mark.parametrize(("count", "word"), [(1, "اشتراكك"), (2, "اشتراكيك"), (3, "اشتراكاتك")])
def test_arabic_subscription_count_uses_singular_dual_and_plural(shipped_renderer: Renderer, scenario,
                                                                 count: int, word: str) -> None:
    """The service_cancelled subject follows the number of subscriptions: one, two (dual), several."""
    context = scenario("service_cancelled--card")
    context["subscriptions"] = [{"id": f"s{i}", "name": f"S{i}"} for i in range(count)]
    assert shipped_renderer.render("service_cancelled", "ar", context).subject.startswith(f"تم إلغاء {word} ")


def test_arabic_email_is_right_to_left(shipped_renderer: Renderer, scenario) -> None:
    """An Arabic email declares dir="rtl", aligns text right, and isolates names for bidi."""
    context = scenario("card_charge_failed--unknown-code-rtl")
    email = shipped_renderer.render("card_charge_failed", "ar-EG", context)
    assert (email.dir, email.lang, email.locale) == ("rtl", "ar-EG", "ar")
    assert '<html lang="ar-EG" dir="rtl"' in email.html and "direction:ltr" not in email.html
    assert "text-align:right;color:#1f2933" in email.html and "text-align:left;color" not in email.html
    assert '<span dir="auto">شركة النور للتقنية</span>' in email.html
    english = shipped_renderer.render("card_charge_failed", "en", context)
    assert english.dir == "ltr" and "text-align:left;color:#1f2933" in english.html


def test_mjml_is_compiled_once_and_again_after_a_change(copied, scenario, monkeypatch) -> None:
    """Many emails in many locales compile the MJML once; touching the layout recompiles it on the next one."""
    calls: list[str] = []
    real = dunning.emails.render.compile_notice

    def counting(env, templates_dir, notice):
        calls.append(notice)
        return real(env, templates_dir, notice)

    monkeypatch.setattr(dunning.emails.render, "compile_notice", counting)
    templates, locales = copied
    renderer = Renderer(templates, locales, reload_interval=0)
    context = scenario("past_due--stage-1-card")
    first = renderer.compile("past_due")
    for _ in range(20):
        for locale in SHIPPED_LOCALES:
            renderer.render("past_due", locale, context)
    assert calls == ["past_due"] and renderer.compile("past_due") is first
    layout = templates / "_layout.mjml"
    layout.write_text(layout.read_text(encoding="utf-8").replace("{{ branding.company }} ·", "ACME-42 ·"),
                      encoding="utf-8")
    _bump_mtime(layout)
    assert "ACME-42" in renderer.render("past_due", "fr", context).html
    assert calls == ["past_due", "past_due"]


def test_changes_wait_for_the_reload_interval(copied, scenario) -> None:
    """With a reload interval, files are not checked again before it has passed."""
    templates, locales = copied
    renderer = Renderer(templates, locales, reload_interval=3600)
    first = renderer.compile("past_due")
    _bump_mtime(templates / "_layout.mjml")
    assert renderer.compile("past_due") is first


def test_a_change_shows_once_the_interval_has_passed_however_often_emails_render(copied, scenario,
                                                                                  monkeypatch) -> None:
    """Emails rendered more often than the reload interval do not put off the next check of the files."""
    now = [1000.0]
    monkeypatch.setattr(dunning.emails.render.time, "monotonic", lambda: now[0])
    templates, locales = copied
    renderer = Renderer(templates, locales, reload_interval=10)
    context = scenario("past_due--stage-1-card")
    renderer.render("past_due", "fr", context)
    layout = templates / "_layout.mjml"
    layout.write_text(layout.read_text(encoding="utf-8").replace("{{ branding.company }} ·", "ACME-42 ·"),
                      encoding="utf-8")
    _bump_mtime(layout)
    for moment in (1004.0, 1008.0, 1009.9):   # inside the interval of the first check: not read again
        now[0] = moment
        assert "ACME-42" not in renderer.render("past_due", "fr", context).html
    now[0] = 1010.0
    assert "ACME-42" in renderer.render("past_due", "fr", context).html


def test_an_edited_translation_shows_on_the_next_render(copied, scenario) -> None:
    """A marketer's .po edit is used by the next email, without compiling a .mo file."""
    templates, locales = copied
    renderer = Renderer(templates, locales, reload_interval=0)
    context = scenario("past_due--stage-1-card")
    assert "Bonjour Acme Analytics AB," in renderer.render("past_due", "fr", context).text
    po = locales / "fr" / "LC_MESSAGES" / "messages.po"
    po.write_text(po.read_text(encoding="utf-8").replace('msgstr "Bonjour %(name)s,"', 'msgstr "Salut %(name)s,"'),
                  encoding="utf-8")
    _bump_mtime(po)
    email = renderer.render("past_due", "fr", context)
    assert "Salut Acme Analytics AB," in email.text and "Salut <span" in email.html
    assert not list(locales.rglob("*.mo"))


def test_a_broken_translation_names_the_locale(copied, scenario) -> None:
    """A translation with an unknown placeholder fails that email with TemplateError at the sentence's line."""
    templates, locales = copied
    po = locales / "de" / "LC_MESSAGES" / "messages.po"
    po.write_text(po.read_text(encoding="utf-8").replace('msgstr "Guten Tag %(name)s,"', 'msgstr "Hallo %(nmae)s,"'),
                  encoding="utf-8")
    renderer = Renderer(templates, locales)
    with pytest.raises(TemplateError) as caught:
        renderer.render("past_due", "de", scenario("past_due--stage-1-card"))
    lines = (templates / "past_due.mjml").read_text(encoding="utf-8").splitlines()
    greeting = next(n for n, line in enumerate(lines, 1) if "Hello {{ name }}" in line)
    assert (caught.value.template, caught.value.line, caught.value.locale) == ("past_due.mjml", greeting, "de")
    assert "nmae" in str(caught.value)
    assert renderer.render("past_due", "fr", scenario("past_due--stage-1-card")).locale == "fr"


def test_a_missing_value_names_the_template_line_and_locale(tree, scenario) -> None:
    """An undefined variable fails with TemplateError pointing at the partial and line that used it."""
    templates, locales = tree({
        "broken.mjml": """\
            {% extends "_layout.mjml" %}
            {% block content %}
            <mj-section><mj-column>
              {% include "_part.mjml" %}
            </mj-column></mj-section>
            {% endblock %}
            """,
        "_part.mjml": """\
            <mj-text>fine</mj-text>
            <mj-text>
              {{ account.nickname }}
            </mj-text>
            """,
        "broken.txt": "x",
    }, catalogs={"fr": ""})
    with pytest.raises(TemplateError) as caught:
        Renderer(templates, locales).render("broken", "fr", scenario("past_due--stage-1-card"))
    assert (caught.value.template, caught.value.line, caught.value.locale) == ("_part.mjml", 3, "fr")
    assert "nickname" in str(caught.value)


def test_a_missing_value_in_the_text_part_names_its_line(tree, scenario) -> None:
    """The text template's errors point at the .txt file and line."""
    templates, locales = tree({
        "note.mjml": '{% extends "_layout.mjml" %}',
        "note.txt": "Hello\n\n{{ account.name }}\n{{ nothing_here }}\n",
    })
    with pytest.raises(TemplateError) as caught:
        Renderer(templates, locales).render("note", "en", scenario("past_due--stage-1-card"))
    assert (caught.value.template, caught.value.line) == ("note.txt", 4)


def test_a_tag_between_components_outside_mj_raw_is_refused(tree) -> None:
    """MJML drops an {% if %} standing between components: the compile fails at its file and line."""
    templates, locales = tree({
        "loose.mjml": """\
            {% extends "_layout.mjml" %}
            {% block content %}
            {% if shared_card %}
            <mj-section><mj-column><mj-text>x</mj-text></mj-column></mj-section>
            {% endif %}
            {% endblock %}
            """,
        "loose.txt": "x",
    })
    with pytest.raises(TemplateError, match="mj-raw") as caught:
        Renderer(templates, locales).compile("loose")
    assert (caught.value.template, caught.value.line) == ("loose.mjml", 3)


def test_a_tag_inside_mj_raw_survives_mjml(tree, scenario) -> None:
    """The same condition wrapped in <mj-raw> keeps or removes the section per email."""
    templates, locales = tree({
        "wrapped.mjml": """\
            {% extends "_layout.mjml" %}
            {% block content %}
            <mj-raw>{% if shared_card %}</mj-raw>
            <mj-section><mj-column><mj-text>SHARED-CARD</mj-text></mj-column></mj-section>
            <mj-raw>{% endif %}</mj-raw>
            {% endblock %}
            """,
        "wrapped.txt": "x",
    })
    renderer = Renderer(templates, locales)
    context = scenario("past_due--stage-1-card")
    assert "SHARED-CARD" not in renderer.render("wrapped", "en", context).html
    context["shared_card"] = True
    assert "SHARED-CARD" in renderer.render("wrapped", "en", context).html


def test_a_statement_that_mjml_would_copy_is_refused(tree) -> None:
    """MJML copies <mj-title> into the body; a {% if %} there would be doubled, so the compile refuses it."""
    templates, locales = tree({
        "_layout.mjml": """\
            <mjml><mj-head><mj-title>{% if stage %}S{% endif %}</mj-title></mj-head>
            <mj-body>{% block content %}{% endblock %}</mj-body></mjml>
            """,
        "titled.mjml": '{% extends "_layout.mjml" %}',
        "titled.txt": "x",
    })
    with pytest.raises(TemplateError, match="repeated"):
        Renderer(templates, locales).compile("titled")


def test_a_template_syntax_error_names_file_and_line(tree) -> None:
    """A Jinja syntax error in a partial is reported at the partial's line before MJML runs."""
    templates, locales = tree({
        "typo.mjml": '{% extends "_layout.mjml" %}{% block content %}{% include "_typo.mjml" %}{% endblock %}',
        "_typo.mjml": "<mj-section>\n<mj-column>\n<mj-text>{% if x %}</mj-text>\n</mj-column></mj-section>\n",
        "typo.txt": "x",
    })
    with pytest.raises(TemplateError) as caught:
        Renderer(templates, locales).compile("typo")
    assert caught.value.template == "_typo.mjml" and caught.value.line is not None


def test_unknown_notice_names_are_refused(shipped_renderer: Renderer) -> None:
    """A notice name that is not a plain identifier never reaches the file system."""
    with pytest.raises(TemplateError, match="not a notice name"):
        shipped_renderer.compile("../settings")


def test_shipped_notices_are_the_six_of_the_policy() -> None:
    """Each notice of the policy has an MJML and a text template."""
    assert NOTICES == ("card_charge_failed", "past_due", "card_expiring", "balance_settled", "service_cancelled",
                       "pending_deletion")
    for notice in NOTICES:
        assert (TEMPLATES / f"{notice}.mjml").is_file() and (TEMPLATES / f"{notice}.txt").is_file()


def test_the_catalog_for_a_locale_is_written_before_any_email(copied, scenario) -> None:
    """Removing a catalog after start-up fails that locale's emails loudly, never in silent English."""
    templates, locales = copied
    renderer = Renderer(templates, locales, reload_interval=0)
    (locales / "sv" / "LC_MESSAGES" / "messages.po").unlink()
    with pytest.raises(TemplateError) as caught:
        renderer.render("past_due", "sv", scenario("past_due--stage-1-card"))
    assert caught.value.locale == "sv"


def test_text_and_html_share_translations(shipped_renderer: Renderer, scenario) -> None:
    """Every sentence of the German text part is also in the German HTML part (one catalog entry each)."""
    context = scenario("past_due--stage-2-shared-two-currencies")
    email = shipped_renderer.render("past_due", "de", context)
    html_text = visible_text(email.html)
    for line in email.text.splitlines():
        if line.strip() and not line.startswith(("- ", "  ", "--", "https://")):   # invoice items: a table in HTML
            assert " ".join(line.split()) in html_text, line


def test_a_broken_template_is_not_recompiled_for_every_email(tree, scenario, monkeypatch) -> None:
    """Within the reload interval, emails of a notice whose template is broken fail without a new compile."""
    calls: list[str] = []
    real = dunning.emails.render.compile_notice
    monkeypatch.setattr(dunning.emails.render, "compile_notice",
                        lambda env, root, notice: calls.append(notice) or real(env, root, notice))
    templates, locales = tree({"bad.mjml": "{% if %}", "bad.txt": "x"}, catalogs={"fr": ""})
    renderer = Renderer(templates, locales, reload_interval=3600)
    for locale in ("en", "fr"):
        with pytest.raises(TemplateError) as caught:
            renderer.render("bad", locale, scenario("past_due--stage-1-card"))
        assert (caught.value.template, caught.value.line, caught.value.locale) == ("bad.mjml", 1, locale)
    assert calls == ["bad"]


def test_constant_strings_are_translated_once_per_locale_not_per_email(shipped_renderer: Renderer, scenario,
                                                                       monkeypatch) -> None:
    """Rendering calls no translation function for a constant string: each was looked up when the notice was
    compiled for the locale. (A template that assigns `_`, as `{% for _ in … %}` does, would undo that.)"""
    from dunning.emails.jinja_env import EmailEnvironment

    called: list[str] = []
    sandbox_call = EmailEnvironment.call

    def watching(self, context, obj, *args, **kwargs):
        if getattr(obj, "__name__", "") in ("_gettext_alias", "gettext", "ngettext", "pgettext", "npgettext"):
            called.append(f"{context.name}: {args[:1]}")
        return sandbox_call(self, context, obj, *args, **kwargs)

    monkeypatch.setattr(EmailEnvironment, "call", watching)
    rendered = 0
    for name in scenario_names():
        context = scenario(name)
        for locale in SHIPPED_LOCALES:
            shipped_renderer.render(context["notice"], locale, context)
            rendered += 1
    assert rendered >= len(NOTICES) * len(SHIPPED_LOCALES)
    assert called == []


def test_lint_refuses_a_template_that_assigns_a_translation_name() -> None:
    """`{% for _ in … %}` or `{% set gettext = … %}` shadows the translation functions: lint names the line."""
    from jinja2.sandbox import SandboxedEnvironment

    from dunning.emails import lint

    env = SandboxedEnvironment(extensions=["jinja2.ext.i18n"])
    source = ("{{ _('Hello') }}\n{% for _ in range(3) %}.{% endfor %}\n{% set gettext = 1 %}\n"
              "{% for pad in x %}{% endfor %}")
    problems = lint.check_jinja_syntax("t.mjml", source, env)
    assert [(p.line, p.message.split("`")[1]) for p in problems] == [(2, "_"), (3, "gettext")]
    assert lint.check_jinja_syntax("t.mjml", "{% for pad in range(3) %}{{ _('x') }}{% endfor %}", env) == []


def test_egyptian_arabic_writes_arabic_indic_digits_unless_latin_ones_are_chosen(shipped_renderer: Renderer,
                                                                                   scenario, tmp_path) -> None:
    """ar-EG follows CLDR's default numbering system (Arabic-Indic) in dates, amounts and counts; ar keeps Latin
    digits; the latin_digits setting gives ar-EG Latin ones. URLs and invoice ids keep theirs."""
    context = scenario("pending_deletion--30-days")
    context["days_left"] = 7
    egyptian = shipped_renderer.render("pending_deletion", "ar-EG", context)
    assert "خلال ٧ أيام" in egyptian.subject and "٧" in egyptian.text and "7 أيام" not in egyptian.text
    assert context["invoices"][0]["id"] in egyptian.text and context["support_url"] in egyptian.text
    assert "خلال 7 أيام" in shipped_renderer.render("pending_deletion", "ar", context).subject
    latin = Renderer(TEMPLATES, LOCALES, cache_dir=tmp_path, latin_digits=True)
    assert "خلال 7 أيام" in latin.render("pending_deletion", "ar-EG", context).subject


def test_every_command_renders_with_the_settings_digits(scenario, tmp_path, monkeypatch) -> None:
    """The renderer that run, lint, preview and the studio make from the settings writes Latin digits in ar-EG
    when i18n.latin_digits is set, and the locale's own when it is not."""
    context = scenario("pending_deletion--30-days")
    context["days_left"] = 7
    for chosen, expected in (("true", "خلال 7 أيام"), ("false", "خلال ٧ أيام")):
        monkeypatch.setenv("DUNNING_I18N__LATIN_DIGITS", chosen)
        renderer = RenderLimits.of(load_settings()).renderer(TEMPLATES, LOCALES, cache_dir=tmp_path)
        assert expected in renderer.render("pending_deletion", "ar-EG", context).subject


def test_the_ninety_days_are_written_in_the_locale_digits(shipped_renderer: Renderer, scenario) -> None:
    """service_cancelled's 90-day rule is a count like the others: ٩٠ in ar-EG, 90 in ar."""
    context = scenario("service_cancelled--card")
    assert "بعد ٩٠ يومًا" in shipped_renderer.render("service_cancelled", "ar-EG", context).text
    assert "بعد 90 يومًا" in shipped_renderer.render("service_cancelled", "ar", context).text
