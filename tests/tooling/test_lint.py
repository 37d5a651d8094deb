"""`dunning lint`: each kind of defect is reported with its file and line, and the shipped tree is clean."""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po, write_po
from jinja2.sandbox import SandboxedEnvironment

from dunning.cli import main
from dunning.emails import lint
from dunning.emails.lint_tree import lint_tree
from dunning.i18n.workflow import placeholders

from .conftest import SHIPPED_LOCALES, SHIPPED_TEMPLATES
from .conftest import write_po as write_po_text

NOTICE = "past_due.mjml"


def _insert_after(path: Path, marker: str, text: str) -> int:
    """Insert a line after the first line holding the marker; returns the inserted line's number."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if marker in line)
    lines.insert(index + 1, text + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return index + 2


def _lint(workdir: Path) -> list[str]:
    problems = lint_tree(workdir / "templates" / "emails", workdir / "locales")
    return [str(problem) for problem in problems if problem.severity == "error"]


def _edit_catalog(path: Path, edit) -> int:
    """Apply edit(message) -> bool to the first message it accepts; returns that entry's new line."""
    with path.open("rb") as handle:
        catalog = read_po(handle)
    target = next(message for message in catalog if message.id and edit(message))
    with path.open("wb") as handle:
        write_po(handle, catalog)
    with path.open("rb") as handle:
        return read_po(handle).get(target.id, target.context).lineno


def _has(problems: list[str], where: str, *words: str) -> bool:
    return any(p.startswith(where + ": ") and all(w in p for w in words) for p in problems)


# -- defects in copies of the shipped tree ------------------------------------------------------

def test_reports_template_syntax_error_with_line(shipped_copy: Path) -> None:
    """A Jinja syntax error in a template is reported at its file and line."""
    line = _insert_after(shipped_copy / "templates/emails" / NOTICE, "<mj-column",
                         "<mj-text>{{ account.name </mj-text>")
    assert _has(_lint(shipped_copy), f"templates/emails/{NOTICE}:{line}", "syntax error")


def test_reports_unknown_mjml_tag_with_line(shipped_copy: Path) -> None:
    """A misspelt MJML component is reported at its file and line."""
    line = _insert_after(shipped_copy / "templates/emails" / NOTICE, "<mj-column",
                         "<mj-txt>Hello</mj-txt>")
    assert _has(_lint(shipped_copy), f"templates/emails/{NOTICE}:{line}", "unknown MJML tag <mj-txt>")


def test_reports_jinja_tag_between_components_with_line(shipped_copy: Path) -> None:
    """A Jinja block tag between MJML components (not inside mj-raw) is reported at its line."""
    line = _insert_after(shipped_copy / "templates/emails" / NOTICE, "<mj-column",
                         "{% if shared_card %}<mj-spacer />{% endif %}")
    problems = _lint(shipped_copy)
    assert _has(problems, f"templates/emails/{NOTICE}:{line}", "{% if %}", "mj-raw")
    assert _has(problems, f"templates/emails/{NOTICE}:{line}", "{% endif %}")


def test_reports_missing_translation_at_po_line(shipped_copy: Path) -> None:
    """A message left untranslated is reported at its entry in the locale's catalog."""
    po = shipped_copy / "locales/fr/LC_MESSAGES/messages.po"

    def blank(message) -> bool:
        message.string = ("",) * len(message.string) if isinstance(message.string, tuple) else ""
        return True
    line = _edit_catalog(po, blank)
    assert _has(_lint(shipped_copy), f"locales/fr/LC_MESSAGES/messages.po:{line}", "untranslated")


def test_reports_dropped_placeholder_at_po_line(shipped_copy: Path) -> None:
    """A translation that drops a placeholder of its msgid is reported at its catalog entry."""
    po = shipped_copy / "locales/de/LC_MESSAGES/messages.po"
    dropped: list[str] = []

    def drop(message) -> bool:
        if isinstance(message.id, tuple) or not placeholders(message.id) or not message.string:
            return False
        dropped.append(sorted(placeholders(message.id))[0])
        message.string = message.string.replace(dropped[0], "")
        return True
    line = _edit_catalog(po, drop)
    assert _has(_lint(shipped_copy), f"locales/de/LC_MESSAGES/messages.po:{line}", "drops", dropped[0])


def test_reports_http_link_with_line(shipped_copy: Path) -> None:
    """A plain-http link in a template is reported at its file and line."""
    line = _insert_after(shipped_copy / "templates/emails" / NOTICE, "<mj-column",
                         '<mj-button href="http://billing.example.com/pay">Pay</mj-button>')
    assert _has(_lint(shipped_copy), f"templates/emails/{NOTICE}:{line}", "https", "http://billing")


def test_reports_http_link_from_scenario_data_at_its_line(shipped_copy: Path) -> None:
    """A plain-http URL that reaches the rendered HTML from scenario data is traced to the scenario line."""
    scenario = shipped_copy / "templates/emails/scenarios/past_due--stage-1-card.json"
    text = scenario.read_text(encoding="utf-8").replace('"support_url": "https://', '"support_url": "http://', 1)
    scenario.write_text(text, encoding="utf-8")
    line = text[:text.index('"support_url": "http://')].count("\n") + 1
    problems = _lint(shipped_copy)
    assert _has(problems, f"templates/emails/scenarios/past_due--stage-1-card.json:{line}",
                "rendered <a href>", "http://example.com/support", "scenario past_due--stage-1-card")


def test_broken_template_and_catalog_do_not_stop_the_other_checks(shipped_copy: Path) -> None:
    """With one template and one catalog unparseable, the linter still reports the other problems."""
    _insert_after(shipped_copy / "templates/emails" / NOTICE, "<mj-column", "{% for %}")
    sv = shipped_copy / "locales/sv/LC_MESSAGES/messages.po"
    sv.write_text(sv.read_text(encoding="utf-8") + '\nmsgid "dangling"\nmsgstr "x"\nnot a po line\n',
                  encoding="utf-8")
    line = _insert_after(shipped_copy / "templates/emails/service_cancelled.mjml", "<mj-column",
                         "<mj-txt>Hello</mj-txt>")
    problems = _lint(shipped_copy)
    assert any(p.startswith(f"templates/emails/{NOTICE}:") and "syntax error" in p for p in problems)
    assert any(p.startswith("locales/sv/LC_MESSAGES/messages.po:") for p in problems)
    assert _has(problems, f"templates/emails/service_cancelled.mjml:{line}", "<mj-txt>")
    assert not any("check failed" in p or "crashed" in p for p in problems)


def test_lint_command_prints_file_line_and_exits_non_zero(shipped_copy: Path, capsys) -> None:
    """`dunning lint` prints `file:line: message` for each error and exits 1."""
    line = _insert_after(shipped_copy / "templates/emails" / NOTICE, "<mj-column",
                         "<mj-txt>Hello</mj-txt>")
    assert main(["lint", "--no-render"]) == 1
    assert f"templates/emails/{NOTICE}:{line}: unknown MJML tag <mj-txt>" in capsys.readouterr().out


# -- the shipped tree ---------------------------------------------------------------------------

def test_shipped_templates_and_catalogs_lint_clean() -> None:
    """The shipped templates and catalogs, rendered in every locale with every scenario, have no error."""
    problems = lint_tree(SHIPPED_TEMPLATES, SHIPPED_LOCALES)
    assert [str(p) for p in problems if p.severity == "error"] == []


def test_lint_command_exits_zero_on_shipped_tree(capsys) -> None:
    """`dunning lint` on the shipped tree exits 0 and says there is no error."""
    assert main(["lint"]) == 0
    assert "0 error(s)" in capsys.readouterr().out


# -- the checks on their own --------------------------------------------------------------------

def test_mjml_content_may_hold_jinja_and_html() -> None:
    """Jinja and HTML inside mj-text, mj-button and mj-raw, and mj-attributes defaults, are fine."""
    source = """<mjml><mj-head><mj-attributes><mj-all padding="0"/><mj-class name="a" color="red"/>
      </mj-attributes></mj-head><mj-body><mj-raw>{% if x %}</mj-raw><mj-section><mj-column>
      <mj-text>{% if y %}<b>{{ name }}</b>{% endif %}</mj-text>
      <mj-button href="{{ settlement_url }}">{{ _("Pay") }}</mj-button>
      <mj-image src="https://example.com/logo.png" alt="{{ branding.company }}" />
      </mj-column></mj-section><mj-raw>{% endif %}</mj-raw></mj-body></mjml>"""
    assert lint.check_mjml("t.mjml", source) == []


def test_mjml_reports_html_between_components_and_image_without_alt() -> None:
    """A bare HTML element between components and an image without alt are each reported at their line."""
    source = "<mjml><mj-body><mj-section><mj-column>\n<div>x</div>\n<mj-image src=\"https://e.com/a.png\"/>\n" \
             "</mj-column></mj-section></mj-body></mjml>"
    assert [(p.line, p.message.split(" ")[0]) for p in lint.check_mjml("t.mjml", source)] == [
        (2, "<div>"), (3, "<mj-image>")]


def test_plural_form_for_one_number_may_leave_the_number_out(workdir: Path) -> None:
    """Arabic's forms for 0, 1 and 2 may omit %(count)s; a form covering several numbers may not."""
    text = write_po_text(workdir / "locales", "ar", '''\
        msgid "%(count)s day"
        msgid_plural "%(count)s days"
        msgstr[0] "لا أيام"
        msgstr[1] "يوم واحد"
        msgstr[2] "يومان"
        msgstr[3] "%(count)s أيام"
        msgstr[4] "يومًا"
        msgstr[5] "%(count)s يوم"
        ''').read_text(encoding="utf-8")
    path = workdir / "locales/ar/LC_MESSAGES/messages.po"
    path.write_text(text.replace("nplurals=2; plural=(n > 1);", "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : "
                                 "n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5);"), encoding="utf-8")
    with path.open("rb") as handle:
        problems = lint.check_catalog("ar.po", read_po(handle))
    assert [p.message.split(": ", 1)[1] for p in problems] == ["msgstr[4] drops %(count)s"]


def test_jinja_syntax_check_names_line() -> None:
    """check_jinja_syntax reports the line of the error."""
    env = SandboxedEnvironment(extensions=["jinja2.ext.i18n"])
    [problem] = lint.check_jinja_syntax("t.mjml", "a\nb\n{% if x %}\n", env)
    assert problem.file == "t.mjml" and problem.line >= 3


def test_url_problem_accepts_only_absolute_https_and_mailto() -> None:
    """https and mailto links pass; http, relative, protocol-relative and empty ones do not."""
    assert lint.url_problem("https://example.com/x") is None
    assert lint.url_problem("mailto:billing@example.com") is None
    for bad in ("http://example.com", "/settle", "//example.com/x", "", "https://", "#top"):
        assert lint.url_problem(bad) is not None, bad
    assert lint.url_problem("{{ settlement_url }}", template=True) is None


def test_rendered_html_checks_links_images_and_size() -> None:
    """Rendered HTML with an http link, an image without alt or over 102 KB is reported."""
    html = '<a href="http://x.example/">x</a><img src="https://x.example/a.png">'
    messages = [finding.message for finding in lint.check_html(html)]
    assert any("http://x.example/" in m for m in messages) and any("alt" in m for m in messages)
    big = "<p>" + "x" * (102 * 1024) + "</p>"
    assert any("Gmail clips" in f.message and f.severity == "error" for f in lint.check_html(big))
    assert lint.check_html('<a href="https://x.example/">x</a><img src="https://x/a.png" alt="">') == []


def test_catalog_checks_every_plural_form_and_html_tags(workdir: Path) -> None:
    """Placeholders are checked in every plural form, HTML tags in every translation; fuzzy is listed."""
    path = write_po_text(workdir / "locales", "fr", '''\
        msgid "%(count)s day left"
        msgid_plural "%(count)s days left"
        msgstr[0] "%(count)s jour restant"
        msgstr[1] "jours restants"

        msgid "Read <a href=\\"%(url)s\\">the terms</a>"
        msgstr "Lisez <a href=\\"%(url)s\\">les conditions"

        #, fuzzy
        msgid "Pay now"
        msgstr "Payer"
        ''')
    with path.open("rb") as handle:
        problems = lint.check_catalog("fr.po", read_po(handle))
    assert [(p.line, "drops" in p.message, "HTML tags" in p.message, "fuzzy" in p.message)
            for p in problems] == [(7, True, False, False), (12, False, True, False), (16, False, False, True)]
