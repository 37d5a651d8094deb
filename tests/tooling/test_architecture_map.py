"""docs/architecture.md's module map names every module under dunning/, by the rule written at its top."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "dunning"
_NAMED = re.compile(r"`([^`]+)`")


def map_rows(text: str) -> list[tuple[set[str], set[str]]]:
    """Each row of the module map: the names in backticks of its first column, and of its last."""
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and not set(cells[0]) <= {"-", " "}:
            rows.append((set(_NAMED.findall(cells[0])), set(_NAMED.findall(cells[-1]))))
    return rows


def unmapped(package: Path, rows: list[tuple[set[str], set[str]]]) -> list[str]:
    """The modules of the package (paths relative to it) that the rule does not find in the rows."""
    missing = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if path.name == "__init__.py":
            continue
        if len(relative.parts) == 1:
            found = any(path.name in first for first, _ in rows)
        else:
            folder = relative.parent.as_posix() + "/"
            found = any(folder in first and path.stem in last for first, last in rows)
        if not found:
            missing.append(relative.as_posix())
    return missing


def test_every_module_under_dunning_is_in_the_module_map():
    """A module added without its mention in docs/architecture.md fails here, named."""
    rows = map_rows((REPO / "docs" / "architecture.md").read_text(encoding="utf-8"))
    assert unmapped(PACKAGE, rows) == []


def test_the_rule_finds_a_module_that_is_missing(tmp_path):
    """A module of a folder, or at the top of the package, that the map does not name is reported."""
    (tmp_path / "delivery").mkdir()
    for name in ("cli.py", "api.py", "delivery/__init__.py", "delivery/mime.py", "delivery/envelope.py"):
        (tmp_path / name).write_text("")
    text = ("## Module map\n\n| folder | job | modules |\n| --- | --- | --- |\n"
            "| `cli.py` | parse | `cli` |\n| `delivery/` | send | `mime` (bytes), `transport` |\n\n## Next\n")
    assert unmapped(tmp_path, map_rows(text)) == ["api.py", "delivery/envelope.py"]
