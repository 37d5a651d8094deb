"""The mailcheck report: per filter, the scores and the symbols matched; every finding by email."""

from __future__ import annotations

from collections import Counter

from mailcheck.browser import PageProblem
from mailcheck.verdict import Verdict


def summary(verdicts: dict[str, list[Verdict]], pages: list[PageProblem], checked: int) -> tuple[str, bool]:
    """The report's text, and whether anything failed."""
    lines: list[str] = []
    failed = False
    tools = sorted({v.tool for vs in verdicts.values() for v in vs})
    for tool in tools:
        mine = [(name, v) for name, vs in verdicts.items() for v in vs if v.tool == tool]
        scores = [v.score for _, v in mine]
        symbols = Counter(f"{s}({score:g})" for _, v in mine for s, score in v.symbols.items() if score)
        lines.append(f"{tool}: {len(mine)} emails, total score min {min(scores):g} / max {max(scores):g}")
        lines += [f"  {count:3d} × {symbol}" for symbol, count in sorted(symbols.items())]
        for name, verdict in mine:
            if verdict.failing:
                failed = True
                lines.append(f"  FAIL {name}: {', '.join(verdict.failing)} (total {verdict.describe()})")
    if checked:
        lines.append(f"Chromium: {checked} pages checked (invoice words, page width, contrast)")
        for problem in pages:
            failed = True
            lines.append(f"  FAIL {problem.email} at {problem.view}: {problem.problem}")
    lines.append("mailcheck: FAILED" if failed else "mailcheck: passed")
    return "\n".join(lines) + "\n", failed
