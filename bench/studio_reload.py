"""`python -m bench.studio_reload`: seconds from saving a .po file to its new text on the studio's screen.

Starts the studio over a temporary copy of the templates and catalogs, opens it in Debian's chromium,
then saves the French catalog `--runs` times with a new heading each time and waits for that heading to
appear inside the shown email. Prints every run and the median. `--screenshot FILE` also saves the studio
with the Arabic and the French email side by side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from dunning.emails.studio.server import StudioServer
from dunning.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
MSGID = 'msgid "Your payment did not go through"\nmsgstr "'


def main(argv: list[str] | None = None) -> int:
    """Measure, print the runs and their median; 0 on success."""
    parser = argparse.ArgumentParser(prog="python -m bench.studio_reload", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--screenshot", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="studio-bench-") as work:
        root = Path(work)
        shutil.copytree(REPO / "templates" / "emails", root / "templates" / "emails")
        shutil.copytree(REPO / "locales", root / "locales")
        os.environ.update(DUNNING_I18N__TEMPLATES_DIR=str(root / "templates" / "emails"),
                          DUNNING_I18N__LOCALES_DIR=str(root / "locales"))
        catalog = root / "locales" / "fr" / "LC_MESSAGES" / "messages.po"
        settings = load_settings(REPO / "settings.toml")
        with StudioServer(settings, port=0) as studio, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(studio.url + "#scenario=card_charge_failed--insufficient-funds&locale=fr&row=ar,fr")
            page.wait_for_selector("body[data-live=on]", timeout=60_000)
            if args.screenshot:
                shoot(page, args.screenshot)
            seconds = [save_and_wait(page, catalog, n) for n in range(1, args.runs + 1)]
            browser.close()
    for n, value in enumerate(seconds, start=1):
        print(f"run {n:2}: {value * 1000:6.0f} ms")
    print(f"median of {len(seconds)}: {statistics.median(seconds) * 1000:.0f} ms "
          f"(min {min(seconds) * 1000:.0f}, max {max(seconds) * 1000:.0f})")
    return 0


def save_and_wait(page, catalog: Path, n: int) -> float:
    """Save the catalog with a new heading; the seconds until the email on screen shows it."""
    text = catalog.read_text(encoding="utf-8")
    start = text.index(MSGID) + len(MSGID)
    heading = f"Paiement refusé, version {n}"
    new = text[:start] + heading + text[text.index('"', start):]
    time.sleep(0.3)   # let the previous run's page settle: each run measures one save alone
    began = time.perf_counter()
    catalog.write_text(new, encoding="utf-8")
    page.frame_locator("#focus iframe").get_by_text(heading).wait_for(timeout=10_000)
    return time.perf_counter() - began


def shoot(page, path: Path) -> None:
    """The studio with the French email in focus and the Arabic and French ones side by side below."""
    page.frame_locator("#row .card[data-locale=ar] iframe").get_by_text("تسوية الرصيد").first.wait_for()
    page.wait_for_selector("#lint li")
    page.set_viewport_size({"width": 1720, "height": 1900})
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=False)


if __name__ == "__main__":
    raise SystemExit(main())
