"""Billing-state files for the phases: `dunning sample`, replicated with fresh ids to reach N quickly.

`dunning sample` writes about ten thousand accounts a second; a million would take longer than
the phases it feeds. It writes the first block; the rest repeats that block line by line under new
account ids and addresses (every id inside an account derives from the account id), so every
account stays unique and valid while the file takes seconds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

BLOCK = 20_000


def billing_file(path: Path, count: int, *, mix: str, as_of: str, env: Mapping[str, str], repo: Path) -> Path:
    """Write `count` accounts of the given mix (all-due, none-due, mixed) as JSON Lines to path."""
    block = path.with_suffix(".block.jsonl")
    subprocess.run([sys.executable, "-m", "dunning", "sample", "--accounts", str(min(count, BLOCK)),
                    "--as-of", as_of, "--mix", mix, "--out", str(block)],
                   check=True, env=dict(env), cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = block.read_bytes().splitlines(keepends=True)
    with path.open("wb") as out:
        for index in range(count):
            out.write(renumber(lines[index % len(lines)], index % len(lines), index))
    block.unlink()
    return path


def renumber(line: bytes, old: int, new: int) -> bytes:
    """One sample account line (generated as index `old`) as the account of index `new`."""
    if old == new:
        return line
    return (line.replace(b"acct_%07d" % (old + 1), b"acct_%07d" % (new + 1))
                .replace(b'@customer%d.example"' % (old + 1), b'@customer%d.example"' % (new + 1)))
