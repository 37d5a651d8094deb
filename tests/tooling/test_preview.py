"""`dunning preview`: an offline gallery with one parseable .eml per notice × locale × scenario."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from dunning.cli import main
from dunning.emails.preview import Entry, gallery_html, stem_for
from dunning.emails.render import Renderer
from dunning.emails.scenarios import load_scenarios

from .conftest import SHIPPED_LOCALES, SHIPPED_TEMPLATES


def _expected() -> list[tuple[str, str, str, dict]]:
    locales = sorted(Renderer(SHIPPED_TEMPLATES, SHIPPED_LOCALES).available_locales)
    return [(s.notice, locale, s.name, s.context) for s in load_scenarios(SHIPPED_TEMPLATES)
            for locale in locales]


def test_preview_writes_gallery_and_parseable_eml_for_every_email(tmp_path: Path, capsys) -> None:
    """Every notice × locale × scenario gets an HTML, a text and a parseable .eml, all linked from index.html."""
    out = tmp_path / "gallery"
    assert main(["preview", "--out", str(out)]) == 0
    index = (out / "index.html").read_text(encoding="utf-8")
    expected = _expected()
    assert expected and {notice for notice, *_ in expected} >= {"card_charge_failed", "past_due",
                                                                 "service_cancelled", "pending_deletion"}
    emls = [out / (stem_for(notice, locale, scenario) + ".eml") for notice, locale, scenario, _ in expected]
    assert sorted(emls) == sorted(out.rglob("*.eml"))
    for path in emls:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert message["Subject"] and message["Message-ID"] and message["Content-Language"]
        assert message.get_body(("plain",)).get_content().strip()
        html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
        assert html == path.with_suffix(".html").read_text(encoding="utf-8")
        assert f'src="{path.relative_to(out).with_suffix(".html")}"' in index
    assert index.count("<iframe") == 2 * len(expected)
    assert f"wrote {len(expected)} of {len(expected)} emails" in capsys.readouterr().out


def test_preview_links_use_the_scenario_settlement_url(tmp_path: Path) -> None:
    """The action link in each previewed email is the sample scenario's placeholder URL (card_expiring: its
    update link; balance_settled, with nothing to settle: the support link)."""
    out = tmp_path / "gallery"
    assert main(["preview", "--out", str(out)]) == 0
    for notice, locale, scenario, context in _expected():
        html = (out / (stem_for(notice, locale, scenario) + ".html")).read_text(encoding="utf-8")
        link = {"card_expiring": context.get("update_url"), "balance_settled": context["support_url"]}.get(
            notice, context["settlement_url"])
        assert f'href="{link}"' in html, (notice, locale, scenario)


def test_gallery_escapes_every_value() -> None:
    """Subjects, text, scenario names and errors are escaped in the gallery page."""
    evil = '<script>alert("x")</script>'
    entries = [Entry("past_due", "fr", evil, subject=evil, preheader=evil, text=evil, lang="fr",
                     dir="ltr", stem="emails/past_due/fr/s"),
               Entry("past_due", "ar", "broken", error=evil)]
    page = gallery_html(entries)
    assert "<script>" not in page and 'alert("x")' not in page
    for part in ("<h3>fr · &lt;script&gt;",
                 '<span lang="fr" dir="ltr">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</span></p>'
                 '<p class="preheader">',
                 '<pre class="text" lang="fr" dir="ltr">&lt;script&gt;', '<pre class="error">&lt;script&gt;'):
        assert part in page
