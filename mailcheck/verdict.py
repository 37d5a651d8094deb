"""What a spam filter said about one message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    """A filter's total score, every symbol (rule) it matched with its score, and the failing ones."""

    tool: str
    score: float
    symbols: dict[str, float]
    failing: list[str]

    def describe(self) -> str:
        """`4.05: URI_HIDDEN_PATH(1.0) SUBJECT_HAS_CURRENCY(1.0)` (matched symbols with a score)."""
        shown = " ".join(f"{name}({score:g})" for name, score in sorted(self.symbols.items()) if score)
        return f"{self.score:g}: {shown}" if shown else f"{self.score:g}"
