"""The HTML report in a real browser: self-contained, every chart drawn, readable at phone width."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dunning.cli import main

CHART_TITLES = ["Emails, clicks and settlements by notice", "By week of the email", "Recovered by notice",
                "Settled per 100 emails, by language"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("name", "width"), [("phone", 390), ("desktop", 1280)])
def test_the_html_report_draws_every_chart_offline(scenario, browser, tmp_path, name, width):
    """The file loads nothing else, logs no console error, shows each chart's SVG, and fits the screen's width."""
    out = tmp_path / "report.html"
    assert main(["report", "--format", "html", "--out", str(out)]) == 0
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(out.as_uri())
    assert requested == [out.as_uri()] and errors == []
    charts = page.locator("figure.chart")
    assert [charts.nth(i).get_attribute("aria-label") for i in range(charts.count())] == CHART_TITLES
    for i in range(charts.count()):
        box = charts.nth(i).locator("svg").first.bounding_box()
        assert box is not None and box["width"] > 0.8 * min(width, 480) and box["height"] > 100
        assert charts.nth(i).locator("svg .series").count() >= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.locator(".card b").first.inner_text() == "180.00 EUR, 20.00 USD"
    shot = tmp_path / f"report-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("REPORT_SCREENSHOTS_DIR"):  # refreshes the screenshots in docs/
        shutil.copy(shot, Path(os.environ["REPORT_SCREENSHOTS_DIR"]) / shot.name)
