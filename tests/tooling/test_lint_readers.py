"""`dunning lint` catches what readers and mail clients meet when a fixed defect is put back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from babel.messages.pofile import write_po

from dunning.cli import main
from dunning.emails import lint_text
from dunning.emails.lint_tree import lint_tree
from dunning.i18n import workflow
from dunning.i18n.po_syntax import syntax_errors

from .conftest import write_po as write_po_text


def _errors(workdir: Path, *, render: bool = True) -> list[str]:
    problems = lint_tree(workdir / "templates" / "emails", workdir / "locales", render=render)
    return [str(problem) for problem in problems if problem.severity == "error"]


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_url_wrapped_in_bidi_isolates_in_the_text_part_is_refused(shipped_copy: Path) -> None:
    """Back to `|ltr` on the settlement link: Arabic text parts get U+2066 touching the URL, and lint says so."""
    _replace(shipped_copy / "templates/emails/_layout.txt", "{{ settlement_url|link }}", "{{ settlement_url|ltr }}")
    found = [e for e in _errors(shipped_copy) if "invisible character (U+206" in e]
    assert found and all("[ar, scenario" in e for e in found)


def test_a_url_glued_to_a_sentence_is_refused() -> None:
    """A URL must stand after a space or at a line's start; one between spaces is found by clients."""
    assert lint_text.text_link_problems("See:https://example.com/a\n")
    assert lint_text.text_link_problems("Mail \u2068billing@example.com\u2069 now\n")
    assert not lint_text.text_link_problems("See: https://example.com/a and billing@example.com, now\n")


def test_text_outside_a_translation_tag_is_refused_with_its_line(shipped_copy: Path) -> None:
    """An English sentence written straight into a template is reported at its line; brand names may stand."""
    path = shipped_copy / "templates/emails/past_due.txt"
    _replace(path, "{% include \"_what_next.txt\" %}", "Pay now or else.\n{% include \"_what_next.txt\" %}")
    line = path.read_text(encoding="utf-8").splitlines().index("Pay now or else.") + 1
    assert any(e.startswith(f"templates/emails/past_due.txt:{line}: text outside a translation tag")
               for e in _errors(shipped_copy, render=False))
    assert not lint_text.check_bare_text("x.txt", "{{ _('Pay') }} Visa · Mastercard -- {# note #}\n")


def test_a_po_line_without_its_opening_quote_is_refused_by_lint_and_compile(shipped_copy: Path, capsys) -> None:
    """Babel would read `msgstr Rappel STUDIO"` as "appel STUDIO"; lint and compile name the line instead."""
    path = shipped_copy / "locales/fr/LC_MESSAGES/messages.po"
    _replace(path, 'msgstr "Régler le solde"', 'msgstr Régler le solde"')
    line = path.read_text(encoding="utf-8").splitlines().index('msgstr Régler le solde"') + 1
    assert any(e.startswith(f"locales/fr/LC_MESSAGES/messages.po:{line}: the string has no opening quote")
               for e in _errors(shipped_copy, render=False))
    assert main(["i18n", "compile"]) != 0
    assert f"messages.po:{line}: the string has no opening quote" in capsys.readouterr().err
    assert not list((shipped_copy / "locales").rglob("*.mo"))


@pytest.mark.parametrize("line", ['msgstr "abc', 'msgstr abc"', 'msgid', 'msgstr "a\\qb"', 'msgtxt "a"', '"abc'])
def test_malformed_lines_are_those_msgfmt_check_refuses(tmp_path: Path, line: str) -> None:
    """Each malformed line is refused by our reader and by GNU msgfmt --check (Debian's gettext)."""
    path = write_po_text(tmp_path, "fr", f'msgid "A"\n{line}\n')
    assert 8 in [e.line for e in syntax_errors(path.read_text(encoding="utf-8"))]
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "GNU gettext's msgfmt is needed (apt-get install gettext)"
    result = subprocess.run([msgfmt, "--check", "-o", "/dev/null", str(path)], capture_output=True, text=True)
    assert result.returncode != 0 and "fatal error" in result.stderr


def test_a_msgid_without_msgstr_and_a_message_defined_twice_are_refused_like_msgfmt_does(tmp_path: Path) -> None:
    """msgfmt --check refuses both; so does our reader, at the msgid's line."""
    path = write_po_text(tmp_path, "fr", 'msgid "A"\nmsgstr "a"\n\nmsgid "A"\nmsgstr "b"\n\nmsgid "B"\n')
    errors = syntax_errors(path.read_text(encoding="utf-8"))
    assert [(e.line, e.reason.split(" (")[0]) for e in errors] == [
        (10, "duplicate message definition"), (13, "missing msgstr: the msgid has no translation line")]
    result = subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(path)], capture_output=True, text=True)
    assert ":10: duplicate message definition" in result.stderr and ":13: missing 'msgstr'" in result.stderr


def test_the_shipped_catalogs_pass_msgfmt_check() -> None:
    """What lint accepts, msgfmt --check accepts too: the shipped catalogs."""
    for path in sorted(Path(__file__).resolve().parents[2].glob("locales/*/LC_MESSAGES/messages.po")):
        assert not syntax_errors(path.read_text(encoding="utf-8"))
        result = subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("locale", "msgid", "wrong", "expected"), [
    ("fr", "Questions? Our support team is here to help:", "Une question ? Notre équipe est là :", "no-break space"),
    ("fr", ": ", " : ", "no-break space"),
    ("de", "We could not charge your card %(brand)s ending %(last4)s",
     "Wir konnten Ihre Karte %(brand)s mit der Endung %(last4)s nicht belasten", "the brand comes before"),
    ("de", "Your balance is settled", "Ihr offener Betrag ist beglichen", "no longer open"),
    ("sv", "Final notice before your service is disabled", "Sista påminnelsen innan din tjänst stängs av", "Sista"),
    ("nl", "Your service has been cancelled", "Uw dienst is opgezegd", "opgezegd"),
    ("ar", "Your data will be deleted today", "ستحذف بياناتك اليوم", "سيتم حذف"),
    ("ar", "Settle the balance before %(date)s to keep your data.", "سوِّ الرصيد قبل %(date)s للاحتفاظ ببياناتك.",
     "يُرجى"),
    ("fr", "These subscriptions share the same payment method: %(names)s. Their whole balance is settled in one "
     "payment, and the payment method you use to settle it becomes the active one for all of them.",
     "Ces abonnements partagent le même moyen de paiement\u00a0: %(names)s. Leur solde est réglé en un seul "
     "paiement.", "Leur solde"),
])
def test_wording_a_native_copy_editor_corrects_is_refused(shipped_copy: Path, locale: str, msgid: str,
                                                           wrong: str, expected: str) -> None:
    """Each wording fix, put back in its catalog, is reported at the entry's line."""
    path = shipped_copy / "locales" / locale / "LC_MESSAGES/messages.po"
    catalog = workflow.read_catalog(path, locale)
    catalog[msgid].string = wrong
    with path.open("wb") as handle:
        write_po(handle, catalog)
    line = workflow.read_catalog(path, locale)[msgid].lineno
    assert any(f"messages.po:{line}: " in e and expected in e for e in _errors(shipped_copy, render=False))


def test_a_currency_code_touching_its_amount_is_refused() -> None:
    """English "SEK4,500.00" is reported in a rendered text part; "SEK 4,500.00" is not."""
    from dunning.i18n.style import text_findings
    assert text_findings("en", "Balance due: SEK4,500.00\n")
    assert not text_findings("en", "Balance due: SEK\u00a04,500.00\n")


def test_structure_needs_a_heading_a_caption_and_labelled_links() -> None:
    """A styled div as title, a table without caption and a bare-URL link are each reported."""
    html = ('<div>Title</div><table><tr><th>Invoice</th></tr></table>'
            '<a href="https://example.com/support">https://example.com/support</a>')
    messages = [f.message for f in lint_text.check_structure(html)]
    assert len(messages) == 3
    good = ('<h1>Title</h1><table><caption>Invoices</caption><tr><th>Invoice</th></tr></table>'
            '<a href="https://example.com/support">Contact support</a>')
    assert not lint_text.check_structure(good)


def test_a_bare_url_link_put_back_in_the_layout_is_refused(shipped_copy: Path) -> None:
    """The support link showing its URL again is reported for every email."""
    _replace(shipped_copy / "templates/emails/_layout.mjml", '{{ _("Contact support") }}</a>', "{{ support_url }}</a>")
    assert any("bare URL as its text: 'https://example.com/support'" in e for e in _errors(shipped_copy))
