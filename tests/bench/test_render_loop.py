"""The render loop compares trees only once they render every payload alike, and measures each of them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _loop(*trees: Path, options: tuple[str, ...] = ("--rounds", "1")) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench.render_loop", "--trees", *map(str, trees), "--emails", "40", *options]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_two_trees_that_render_alike_are_each_measured() -> None:
    """The same tree twice: one line of CPU microseconds per email for each."""
    result = _loop(REPO, REPO)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{REPO}: ") and "µs per email" in line for line in lines)


def test_the_sample_locales_with_fresh_amounts_are_measured_round_by_round() -> None:
    """The sample's locale tags (a fallback among them) and payloads of their own each round: a figure per round."""
    result = _loop(REPO, REPO, options=("--rounds", "2", "--sample-locales", "--fresh"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.count(" · ") == 1 for line in lines)
    assert "no catalog for locale 'pt-BR'" in result.stderr


def test_a_tree_that_renders_otherwise_is_not_measured(tmp_path: Path) -> None:
    """A tree whose text part differs by one word stops the comparison, naming a notice and a locale."""
    other = tmp_path / "other"
    for folder in ("dunning", "bench", "templates", "locales"):
        shutil.copytree(REPO / folder, other / folder, ignore=shutil.ignore_patterns("__pycache__"))
    layout = other / "templates" / "emails" / "_layout.txt"
    layout.write_text(layout.read_text(encoding="utf-8") + "\nP.S.\n", encoding="utf-8")
    result = _loop(REPO, other)
    assert result.returncode != 0 and "renders differently" in result.stderr
    assert "µs per email" not in result.stdout
