"""`make mailcheck` without the spam filters: links as clients find them, each notice's facts, the page in Chromium.

Each check is shown to catch its defect when a fixed template is put back in a copy of the shipped tree.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # mailcheck/ is run from the checkout (python -m mailcheck), not installed

from mailcheck.browser import check_pages  # noqa: E402
from mailcheck.emails import MailcheckEmail, sample_emails  # noqa: E402
from mailcheck.facts import check_facts  # noqa: E402
from mailcheck.links import _token_problem, check_links  # noqa: E402


def _emails(root: Path, prefix: str = "") -> list[MailcheckEmail]:
    return [e for e in sample_emails(root / "templates" / "emails", root / "locales") if e.name.startswith(prefix)]


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_every_link_of_every_shipped_email_is_found_and_verifies(shipped_copy: Path) -> None:
    """mailparser and linkify-it find the action and support links in both parts of all 120 emails; tokens verify."""
    problems, found = check_links(_emails(shipped_copy))
    assert problems == [] and found >= 120 * 4


def test_links_hidden_by_bidi_isolates_are_reported(shipped_copy: Path) -> None:
    """Back to `|ltr` around the text part's URLs: Arabic text parts offer no link that clients can find."""
    _replace(shipped_copy / "templates/emails/_layout.txt", "{{ settlement_url|link }}", "{{ settlement_url|ltr }}")
    problems, _ = check_links(_emails(shipped_copy, "past_due--stage-1-card"))
    assert {p.email for p in problems} == {"past_due--stage-1-card/ar"}
    assert any("text part: no link to 'https://billing.example.com/settle/" in p.problem for p in problems)


def test_a_link_whose_token_does_not_verify_is_reported() -> None:
    """A settlement URL with a forged token is refused; a link without a token is not a token problem."""
    assert "does not verify" in (_token_problem("https://billing.example.com/settle/WzEsIjAiXQ.abc.def") or "")
    assert _token_problem("https://example.com/support") is None


def test_the_shipped_emails_carry_every_fact(shipped_copy: Path) -> None:
    """Every notice, stage and day says what ../shared/notice-content.md asks of it, in every language."""
    assert check_facts(_emails(shipped_copy), shipped_copy / "locales") == []


def test_the_deletion_day_asking_to_settle_before_today_is_reported(shipped_copy: Path) -> None:
    """pending_deletion on its last day without the "today" sentences misses its facts in all six languages."""
    for name in ("pending_deletion.mjml", "pending_deletion.txt"):
        _replace(shipped_copy / "templates/emails" / name, "{% if days_left == 0 %}", "{% if false %}")
    problems = check_facts(_emails(shipped_copy, "pending_deletion--today"), shipped_copy / "locales")
    assert len({p.email for p in problems}) == 6
    assert any("Settle the balance today" in p.problem for p in problems)


def test_an_expired_card_past_due_without_the_whole_balance_is_reported(shipped_copy: Path) -> None:
    """past_due for an expired card must still say that the button settles the whole balance."""
    for name in ("past_due.mjml", "past_due.txt"):
        path = shipped_copy / "templates/emails" / name
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('{% else %}</mj-raw>\n    <mj-text>{% include "_one_payment.txt" %}',
                                     '{% elif not (failure and failure.code == "expired_card") %}</mj-raw>\n'
                                     '    <mj-text>{% include "_one_payment.txt" %}')
                        .replace('{% else %}\n{% include "_one_payment.txt" %}',
                                 '{% elif not (failure and failure.code == "expired_card") %}\n'
                                 '{% include "_one_payment.txt" %}'), encoding="utf-8")
    problems = check_facts(_emails(shipped_copy, "past_due--final-card"), shipped_copy / "locales")
    assert len(problems) == 6 and all("whole balance" in p.problem for p in problems)


def _page(name: str, html: str, units: tuple[str, ...]) -> MailcheckEmail:
    return MailcheckEmail(f"card_expiring--{name}/en", "en", "ltr", "Subject", b"", html, False, units=units)


def test_chromium_reports_a_broken_date_a_light_dark_page_and_a_missing_heading(tmp_path: Path) -> None:
    """A date with plain spaces in a narrow column breaks, with no-break spaces it does not; a page without a
    heading, or whose body stays light in dark mode, is reported."""
    broken = _page("broken", '<html><body style="background:#f4f5f7"><div style="width:70px">Due 31. Januar 2026'
                   "</div></body></html>", ("31. Januar 2026",))
    kept = _page("kept", '<html><body><h1>T</h1><style>@media (prefers-color-scheme: dark) { body { background: '
                 '#111827; color: #e4e7eb } }</style><div style="width:70px">Due 31.\u00a0Januar\u00a02026</div>'
                 "</body></html>",
                 ("31.\u00a0Januar\u00a02026",))
    with ThreadPoolExecutor(1) as thread:   # a Playwright of its own, beside any the browser tests keep running
        problems, checked = thread.submit(check_pages, [broken, kept], tmp_path).result()
    assert checked == 10
    found = {(p.email, p.view, p.problem) for p in problems if p.email == broken.name}
    assert (broken.name, "320px light", '"31. Januar 2026" breaks across 3 lines') in found
    assert (broken.name, "375px light", "no heading element (h1)") in found
    assert any(view == "375px dark" and "stays light in dark mode" in problem for _, view, problem in found)
    assert [p.problem for p in problems if p.email == kept.name and not p.problem.startswith("page is")] == []
