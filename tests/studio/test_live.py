"""The studio stays true: watching survives a replaced folder, counts agree with lint, test sends are marked and
go only to the recipients the settings file lists now, and the dark view is the email's own dark mode."""

from __future__ import annotations

import asyncio
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import Page, expect

from dunning.delivery.capture import CaptureServer
from dunning.emails.lint_tree import lint_tree
from dunning.emails.studio.folders import Folders
from dunning.emails.studio.server import StudioServer
from dunning.emails.studio.watch import Broadcast, watch
from dunning.emails.studio.workbench import Workbench
from dunning.settings import Settings

from .test_guards import send

WAIT = 10.0   # s: the longest an event may take to arrive (awaited, never slept)


async def _next(queue: asyncio.Queue[dict[str, object]], kind: str) -> dict[str, object]:
    """The next event of that kind ("change" or "watching")."""
    while True:
        event = await asyncio.wait_for(queue.get(), WAIT)
        if event.get("event", "change") == kind:
            return event


def _watching(tree: Path, steps) -> list[dict[str, object]]:
    """Run the watch over the tree's folders while steps(queue) replaces and edits them; the events it awaited."""
    folders = [tree / "templates" / "emails", tree / "locales"]
    broadcast = Broadcast()

    async def main() -> list[dict[str, object]]:
        stop = asyncio.Event()
        async with broadcast.subscribe() as queue:
            task = asyncio.create_task(watch(folders, lambda changes: {"files": sorted(p for _, p in changes)},
                                             broadcast, stop))
            try:
                return await steps(queue)
            finally:
                stop.set()
                await asyncio.wait_for(task, WAIT)

    with ThreadPoolExecutor(1) as thread:   # a loop of its own: the browser tests keep one running here
        return thread.submit(asyncio.run, main()).result()


def test_watching_goes_on_in_a_folder_that_replaced_the_watched_one(tree: Path) -> None:
    """templates/ moved away and a copy put in its place (as git checkout does): a save in the copy still arrives."""
    templates = tree / "templates" / "emails"

    async def steps(queue: asyncio.Queue[dict[str, object]]) -> list[dict[str, object]]:
        await asyncio.sleep(0.1)   # the watch starts
        shutil.copytree(templates, tree / "copy")
        templates.rename(tree / "old")
        (tree / "copy").rename(templates)
        replaced = await _next(queue, "change")
        (templates / "past_due.txt").write_text("edited\n", encoding="utf-8")
        while True:
            saved = await _next(queue, "change")
            if str(templates / "past_due.txt") in saved["files"]:   # type: ignore[operator]
                return [replaced, saved]

    replaced, saved = _watching(tree, steps)
    assert str(templates) in replaced["files"]   # type: ignore[operator]


def test_a_removed_folder_is_announced_and_its_return_resumes_the_watch(tree: Path) -> None:
    """While locales/ is gone the pages are told the studio is not live; once it is back, they are told it is."""
    locales = tree / "locales"

    async def steps(queue: asyncio.Queue[dict[str, object]]) -> list[dict[str, object]]:
        await asyncio.sleep(0.1)
        locales.rename(tree / "gone")
        stopped = await _next(queue, "watching")
        (tree / "gone").rename(locales)
        return [stopped, await _next(queue, "watching")]

    stopped, resumed = _watching(tree, steps)
    assert stopped["watching"] is False and f"{locales} is missing" in str(stopped["message"])
    assert resumed["watching"] is True


def test_the_translations_table_counts_what_lint_lists(tree: Path) -> None:
    """A new string in a template, before any extract: each locale's missing count equals lint's findings for it."""
    path = tree / "templates" / "emails" / "card_expiring.txt"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "{% endblock %}", "{{ _(\"A brand new sentence.\") }}\n{% endblock %}", 1), encoding="utf-8")
    table = {row["locale"]: row for row in Workbench(Folders.at(tree / "templates" / "emails",
                                                                tree / "locales")).translations()}
    problems = [str(p) for p in lint_tree(tree / "templates" / "emails", tree / "locales", render=False)]
    for locale, row in table.items():
        listed = [p for p in problems if f"missing from {_catalog(tree, locale)}" in p]
        assert row["missing"] == len(listed), (locale, row, listed)
        assert [u["msgid"] for u in row["untranslated"]] == (["A brand new sentence."] if listed else [])
    assert table["fr"]["missing"] == 1 and table["en"]["missing"] == 0


def _catalog(tree: Path, locale: str) -> str:
    from dunning.i18n.workflow import display_path
    return display_path(tree / "locales" / locale / "LC_MESSAGES" / "messages.po")


def test_a_test_send_says_test_in_its_subject(studio: StudioServer, capture: CaptureServer) -> None:
    """The subject of every test send starts with [TEST], so that no one takes it for a real notice."""
    status, answer = send(studio, "editor@example.com")
    assert status == 200 and answer["ok"], answer
    subject = capture.wait_for(1)[0].parsed()["Subject"]
    assert subject.startswith("[TEST] ") and subject == answer["subject"]


def test_recipients_are_read_again_when_the_settings_file_changes(settings: Settings, capture: CaptureServer,
                                                                  tmp_path: Path) -> None:
    """An address added to test_recipients in the settings file may be sent to at once, without a restart."""
    path = tmp_path / "settings.toml"
    path.write_text('[studio]\ntest_recipients = ["editor@example.com"]\n', encoding="utf-8")
    with StudioServer(settings, port=0, settings_file=path) as studio:
        status, answer = send(studio, "new@example.net")
        assert status == 422 and "is not a test recipient" in answer["message"]
        path.write_text('[studio]\ntest_recipients = ["editor@example.com", "@example.net"]\n', encoding="utf-8")
        status, answer = send(studio, "new@example.net")
        assert status == 200 and answer["ok"], answer
    assert capture.wait_for(1)[0].recipients == ("new@example.net",)


def test_the_dark_view_is_the_email_in_its_own_dark_mode(page: Page, browser) -> None:
    """The dark view shows the colours the email's prefers-color-scheme styles give it in Chromium's emulated
    dark mode: page and card backgrounds and heading colour alike, never an inverted picture."""
    page.get_by_role("button", name="Dark").click()
    frame = page.frame_locator("#focus iframe")
    expect(frame.locator("body")).to_have_css("background-color", "rgb(17, 24, 39)")
    view = page.request.get(page.url.split("#")[0] + "api/view?scenario=card_charge_failed--insufficient-funds")
    html = next(email["html"] for email in view.json()["emails"] if email["locale"] == "fr")
    colours = "el => [getComputedStyle(document.body).backgroundColor, getComputedStyle(el).color]"
    shown = frame.locator("h1").evaluate(colours)
    context = browser.new_context(color_scheme="dark")
    try:
        emulated = context.new_page()
        emulated.set_content(html)
        assert shown == emulated.locator("h1").evaluate(colours) == ["rgb(17, 24, 39)", "rgb(228, 231, 235)"]
    finally:
        context.close()
    assert page.locator("#focus iframe").evaluate("el => getComputedStyle(el).filter") == "none"
