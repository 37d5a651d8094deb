"""Each email's HTML part in Debian's Chromium (driven by Playwright, no downloaded browser).

At phone and desktop widths, in light and dark mode, the page is measured from inside
(page_checks.js): invoice-table words, dates or amounts broken across lines, a page wider than the
screen, text below WCAG AA contrast, a missing heading or table caption, a light page behind a dark
email. Screenshots of every email at each width are written for review.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

from mailcheck.emails import MailcheckEmail

CHROMIUM = "/usr/bin/chromium"
CHECKS = (Path(__file__).with_name("page_checks.js")).read_text(encoding="utf-8")
# (width, colour scheme, screenshot taken): the phone widths the layout must hold at, and a desktop client.
VIEWS = ((320, "light", False), (375, "light", True), (375, "dark", True), (480, "light", False), (600, "light", True))


@dataclass(frozen=True, slots=True)
class PageProblem:
    """Something wrong with one email at one width and colour scheme."""

    email: str
    view: str
    problem: str


def _offline(route: Route) -> None:
    route.abort()   # the logo and links point at example.com: nothing leaves the machine


# Notices that list no invoices: their pages must not be failed for lacking an invoice table.
WITHOUT_INVOICES = ("card_expiring--", "balance_settled--")


def check_pages(emails: Iterable[MailcheckEmail], screenshots: Path) -> tuple[list[PageProblem], int]:
    """Every email at every view: the problems found and the number of pages checked."""
    problems: list[PageProblem] = []
    checked = 0
    emails = list(emails)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for width, scheme, shoot in VIEWS:
                context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme)
                context.route("**/*", _offline)
                page = context.new_page()
                view = f"{width}px {scheme}"
                for email in emails:
                    page.set_content(email.html, wait_until="load")
                    checked += 1
                    has_invoices = not email.name.startswith(WITHOUT_INVOICES)
                    facts = {"hasInvoices": has_invoices, "units": list(email.units), "dark": scheme == "dark"}
                    problems += [PageProblem(email.name, view, text) for text in page.evaluate(CHECKS, facts)]
                    if shoot:
                        path = screenshots / email.name / f"{width}-{scheme}.png"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(path), full_page=True)
                context.close()
        finally:
            browser.close()
    return problems, checked
