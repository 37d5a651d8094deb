"""`dunning i18n`: extraction, merging, compiling and coverage over real files."""

from __future__ import annotations

import gettext
from pathlib import Path

from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from dunning.cli import main
from dunning.errors import ExitCode
from dunning.i18n import workflow

from .conftest import REPO, write_po

TEMPLATE = """\
<mjml>
  <mj-body>
    <mj-section><mj-column>
      <mj-text>{% trans name=account.name %}Hello {{ name }}{% endtrans %}</mj-text>
      <mj-button href="{{ settlement_url }}">{{ _("Pay now") }}</mj-button>
      <mj-text>{% trans count=days_left %}{{ count }} day left{% pluralize %}{{ count }} days left{% endtrans %}
      </mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>
"""


def _template(workdir: Path, text: str = TEMPLATE, name: str = "notice.mjml") -> Path:
    path = workdir / "templates" / "emails" / name
    path.write_text(text, encoding="utf-8")
    return path


def _catalog(path: Path):
    with path.open("rb") as handle:
        return read_po(handle)


def test_extract_writes_pot_with_template_locations(workdir: Path, capsys) -> None:
    """extract writes locales/messages.pot holding each template message with its file and line."""
    _template(workdir)
    assert main(["i18n", "extract"]) == 0
    pot = _catalog(workdir / "locales" / "messages.pot")
    assert pot.get("Hello %(name)s").locations == [("templates/emails/notice.mjml", 4)]
    assert pot.get("Pay now").locations == [("templates/emails/notice.mjml", 5)]
    assert pot.get("%(count)s day left").id == ("%(count)s day left", "%(count)s days left")
    assert "messages.pot" in capsys.readouterr().out


def test_extract_fails_loudly_on_template_syntax_error(workdir: Path, capsys) -> None:
    """A template syntax error stops extraction with a non-zero exit naming the file and line."""
    _template(workdir)
    _template(workdir, "<mjml>\n<mj-body>\n{% if account %}\n<mj-text>{{ _('Hi') }}</mj-text>\n</mjml>\n",
              name="broken.mjml")
    assert main(["i18n", "extract"]) == ExitCode.DATA
    err = capsys.readouterr().err
    assert "templates/emails/broken.mjml:" in err and "syntax error" in err
    assert not (workdir / "locales" / "messages.pot").exists()


def test_update_keeps_translations_and_marks_changed_messages_fuzzy(workdir: Path) -> None:
    """update merges new messages, keeps existing translations and marks a reworded one fuzzy."""
    _template(workdir, TEMPLATE.replace("Pay now", "Pay your balance now"))
    po = write_po(workdir / "locales", "fr", '''\
        msgid "Hello %(name)s"
        msgstr "Bonjour %(name)s"

        msgid "Pay your balance"
        msgstr "Réglez votre solde"
        ''')
    assert main(["i18n", "extract"]) == 0
    assert main(["i18n", "update"]) == 0
    catalog = _catalog(po)
    assert catalog.get("Hello %(name)s").string == "Bonjour %(name)s"
    assert not catalog.get("Hello %(name)s").fuzzy
    reworded = catalog.get("Pay your balance now")
    assert reworded.fuzzy and reworded.string == "Réglez votre solde"
    assert catalog.get("%(count)s day left").string == ("", "")


def test_update_without_extraction_names_the_missing_step(workdir: Path, capsys) -> None:
    """update before any extraction fails and says to run extract first."""
    write_po(workdir / "locales", "fr", "")
    assert main(["i18n", "update"]) != 0
    assert "dunning i18n extract" in capsys.readouterr().err


def test_compile_writes_mo_files_gettext_reads(workdir: Path) -> None:
    """compile writes messages.mo next to each catalog, with plural forms and without fuzzy entries."""
    write_po(workdir / "locales", "fr", '''\
        msgid "Hello %(name)s"
        msgstr "Bonjour %(name)s"

        msgid "%(count)s day left"
        msgid_plural "%(count)s days left"
        msgstr[0] "%(count)s jour restant"
        msgstr[1] "%(count)s jours restants"

        #, fuzzy
        msgid "Pay now"
        msgstr "Payer"
        ''')
    assert main(["i18n", "compile"]) == 0
    mo = workdir / "locales" / "fr" / "LC_MESSAGES" / "messages.mo"
    with mo.open("rb") as handle:
        translations = gettext.GNUTranslations(handle)
    assert translations.gettext("Hello %(name)s") == "Bonjour %(name)s"
    assert translations.ngettext("%(count)s day left", "%(count)s days left", 3) == "%(count)s jours restants"
    assert translations.gettext("Pay now") == "Pay now"


def test_compile_refuses_a_dropped_placeholder(workdir: Path, capsys) -> None:
    """compile exits non-zero naming the file, line and message whose translation drops a placeholder."""
    write_po(workdir / "locales", "de", '''\
        msgid "Pay now"
        msgstr "Jetzt bezahlen"
        ''')
    write_po(workdir / "locales", "fr", '''\
        msgid "Hello %(name)s"
        msgstr "Bonjour"
        ''')
    assert main(["i18n", "compile"]) == ExitCode.DATA
    err = capsys.readouterr().err
    assert "locales/fr/LC_MESSAGES/messages.po:7: 'Hello %(name)s': msgstr drops %(name)s" in err
    assert not list((workdir / "locales").rglob("*.mo"))


def test_compile_refuses_a_renamed_placeholder_in_one_plural_form(workdir: Path, capsys) -> None:
    """A plural form whose placeholder is renamed is refused like a dropped one."""
    write_po(workdir / "locales", "fr", '''\
        msgid "%(count)s day left"
        msgid_plural "%(count)s days left"
        msgstr[0] "%(count)s jour restant"
        msgstr[1] "%(nombre)s jours restants"
        ''')
    assert main(["i18n", "compile"]) == ExitCode.DATA
    err = capsys.readouterr().err
    assert "msgstr[1] drops %(count)s" in err and "msgstr[1] adds %(nombre)s" in err


def test_stats_counts_translated_fuzzy_and_missing(workdir: Path, capsys) -> None:
    """stats prints one row per locale with translated, fuzzy and missing counts and a percentage."""
    _template(workdir)
    assert main(["i18n", "extract"]) == 0
    write_po(workdir / "locales", "fr", '''\
        msgid "Hello %(name)s"
        msgstr "Bonjour %(name)s"

        #, fuzzy
        msgid "Pay now"
        msgstr "Payer"
        ''')
    write_po(workdir / "locales", "sv", '''\
        msgid "Hello %(name)s"
        msgstr "Hej %(name)s"

        msgid "Pay now"
        msgstr "Betala nu"

        msgid "%(count)s day left"
        msgid_plural "%(count)s days left"
        msgstr[0] "%(count)s dag kvar"
        msgstr[1] ""
        ''')
    capsys.readouterr()
    assert main(["i18n", "stats"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    (workdir / "none").mkdir()
    code = sum(1 for message in workflow.extract(workdir / "none") if message.id)  # the package's own messages
    total = 3 + code
    assert rows["fr"] == ["1", "1", str(1 + code), str(total), f"{100 / total:.1f}%"]
    assert rows["sv"] == ["2", "0", str(1 + code), str(total), f"{200 / total:.1f}%"]


def test_extraction_options_match_babel_cfg() -> None:
    """`dunning i18n extract` parses templates with the Jinja options babel.cfg gives pybabel."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    jinja = [pattern for pattern, method in method_map if method in ("jinja2", "jinja2.ext:babel_extract")]
    assert jinja
    for pattern in jinja:
        assert options_map[pattern] == workflow.JINJA_OPTIONS, pattern
        assert pattern.endswith(workflow.TEMPLATE_SUFFIXES), pattern
