"""Two source trees measured in turn: each run a child process of one tree, its `dunning` package first."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["alternating", "run_child", "print_medians"]


def alternating(trees: Sequence[Path], rounds: int) -> Iterator[Path]:
    """The trees in turn, `rounds` times, the order reversed every other round (neither always goes first)."""
    for round_ in range(rounds):
        yield from (trees if round_ % 2 == 0 else reversed(trees))


def run_child(tree: Path, script: str, argv: list[str], what: str, env: dict[str, str] | None = None) -> list[str]:
    """The words of the last line a child run printed: `script` run with -P (without its folder on the path),
    so that the tree's own dunning is imported, even when the tree does not hold the script."""
    child_env = {**(os.environ if env is None else env), "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-P", str(Path(script).resolve()), *argv], env=child_env, cwd=tree,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: the {what} run failed: {done.stderr[-2000:]}")
    return done.stdout.splitlines()[-1].split()


def print_medians(trees: Sequence[Path], what: str, rows: dict[str, dict[Path, list[float]]]) -> None:
    """A Markdown table: for each row, the median of each tree's runs, then every run of the last row."""
    print(f"| {what} (median) | " + " | ".join(f"`{t.name}`" for t in trees) + " |")
    print("| --- |" + " ---: |" * len(trees))
    for label, runs in rows.items():
        print(f"| {label} | " + " | ".join(f"{statistics.median(runs[t]):.1f}" for t in trees) + " |")
    print("| every run | " + " | ".join(" · ".join(f"{v:.1f}" for v in runs[t]) for t in trees) + " |")
