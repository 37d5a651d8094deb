"""The mailcheck report: per filter, the scores and the symbols matched; every finding by email."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mailcheck.browser import PageProblem
from mailcheck.verdict import Verdict


def summary(verdicts: dict[str, list[Verdict]], pages: list[PageProblem], checked: int,
            links: Sequence[tuple[str, str]] = (), found: int = 0,
            facts: Sequence[tuple[str, str]] = ()) -> tuple[str, bool]:
    """The report's text, and whether anything failed."""
    lines: list[str] = []
    failed = bool(links or facts)
    lines.append(f"links: {found} found by mailparser and linkify-it in every part, each offered and verified")
    lines += [f"  FAIL {email}: {problem}" for email, problem in links]
    lines.append("facts: each notice's facts on each stage and day (../shared/notice-content.md)")
    lines += [f"  FAIL {email}: {problem}" for email, problem in facts]
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
        lines.append(f"Chromium: {checked} pages checked (invoice words, dates and amounts unbroken, page width, "
                     "contrast, heading, caption, dark page)")
        for problem in pages:
            failed = True
            lines.append(f"  FAIL {problem.email} at {problem.view}: {problem.problem}")
    lines.append("mailcheck: FAILED" if failed else "mailcheck: passed")
    return "\n".join(lines) + "\n", failed
