"""`make clean` removes everything make, the demo, the tests and the build leave, and nothing else."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MADE = [".venv/bin/dunning", "var/dunning.sqlite3", "var/dunning.sqlite3-wal", "var/demo/dunning.sqlite3",
        "var/outbox/1.eml", "var/preview/index.html", "var/sample/billing.jsonl", "dist/dunning-0.1.0.tar.gz",
        "build/lib/dunning/__init__.py", "dunning.egg-info/PKG-INFO", ".pytest_cache/README.md",
        ".import_linter_cache/x", "bench/results/run.json"]
KEPT = ["var/.gitkeep", "settings.toml", "dunning/__init__.py", "templates/emails/past_due.mjml",
        "locales/messages.pot"]


def test_make_clean_removes_what_was_made_and_keeps_the_sources(tmp_path: Path):
    """After the demo, a build and a test run, `make clean` leaves only the checked-in files."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    for name in MADE + KEPT:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    subprocess.run(["make", "--no-print-directory", "clean"], cwd=tmp_path, check=True, capture_output=True)
    left = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert left == {"Makefile", *KEPT}
