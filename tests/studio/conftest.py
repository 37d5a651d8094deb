"""Fixtures for the studio: a copy of the templates and catalogs, a capture server, the studio, a real browser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dunning.delivery.capture import CaptureServer
from dunning.emails.studio.server import StudioServer
from dunning.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
TEST_RECIPIENTS = ["editor@example.com", "@example.org"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the shipped templates and catalogs that a test may edit (the repository's stay untouched)."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "templates" / "emails", root / "templates" / "emails")
    shutil.copytree(REPO / "locales", root / "locales")
    return root


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    """A capture SMTP server on a free loopback port."""
    with CaptureServer() as server:
        yield server


@pytest.fixture
def settings(tree: Path, capture: CaptureServer) -> Settings:
    """Settings over the copied tree, sending through the capture server, with two test recipients."""
    loaded = load_settings(REPO / "settings.toml")
    return loaded.model_copy(update=dict(
        i18n=loaded.i18n.model_copy(update=dict(templates_dir=str(tree / "templates" / "emails"),
                                                locales_dir=str(tree / "locales"))),
        smtp=loaded.smtp.model_copy(update=dict(host=capture.host, port=capture.port)),
        studio=loaded.studio.model_copy(update=dict(test_recipients=TEST_RECIPIENTS))))


@pytest.fixture
def studio(settings: Settings) -> Iterator[StudioServer]:
    """The studio on a free loopback port, in a thread."""
    with StudioServer(settings, port=0) as server:
        yield server


@pytest.fixture
def page(browser, studio: StudioServer):
    """A page of the studio, live (its event stream open), showing the first card_charge_failed scenario."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    opened = context.new_page()
    opened.goto(studio.url + "#scenario=card_charge_failed--insufficient-funds&locale=fr")
    # The first page of a session may wait for every notice's first MJML compile.
    expect(opened.locator("body")).to_have_attribute("data-live", "on", timeout=20_000)
    yield opened
    context.close()
