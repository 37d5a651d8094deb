"""The .po lines `msgfmt --check` refuses and Babel's reader accepts (a string losing its first letter)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dunning.errors import TemplateError

__all__ = ["PoSyntaxError", "syntax_errors", "refuse_malformed"]

_KEYWORD = r"msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?"
# A keyword and its string, or a continued string; nothing but blanks after the closing quote.
_LINE = re.compile(rf'\s*(?:(?:{_KEYWORD})\s+)?"((?:[^"\\]|\\.)*)"\s*\Z')
_KEYWORD_ONLY = re.compile(rf"\s*(?:{_KEYWORD})\s*\Z")
_WORD = re.compile(r"\s*([^\s\"]+)")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = frozenset('\\"abfnrtv?\'01234567x')


@dataclass(frozen=True, slots=True)
class PoSyntaxError:
    """One refused line: its number (from 1), why, and the line as written."""

    line: int
    reason: str
    text: str


def syntax_errors(text: str) -> list[PoSyntaxError]:
    """Every line of a .po file that is not blank, a comment, a keyword with its string, or a string."""
    errors = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        reason = _line_problem(line)
        if reason is not None:
            errors.append(PoSyntaxError(number, reason, line))
    return errors


def _line_problem(line: str) -> str | None:
    match = _LINE.match(line)
    if match is not None:
        bad = next((m.group(1) for m in _ESCAPE.finditer(match.group(1)) if m.group(1) not in _ESCAPES), None)
        return None if bad is None else f"invalid escape sequence \\{bad}"
    if _KEYWORD_ONLY.match(line):
        return "keyword without its string"
    if line.count('"') % 2 == 1 or line.rstrip().endswith('\\"'):
        if line.lstrip().startswith('"') or re.match(rf"\s*(?:{_KEYWORD})\s+\"", line):
            return "end of line within the string: its closing quote is missing"
        return "the string has no opening quote"
    word = _WORD.match(line)
    return f"unknown keyword {word.group(1)!r}" if word else "syntax error"


def refuse_malformed(shown: str, data: bytes, path: str, locale: str | None = None) -> None:
    """Raise TemplateError naming each malformed line (`file:line: reason: 'line'`), as msgfmt --check would."""
    errors = syntax_errors(data.decode("utf-8", errors="replace"))
    if errors:
        listed = "\n  ".join(f"{shown}:{e.line}: {e.reason}: {e.text.strip()!r}" for e in errors)
        raise TemplateError(f"{shown}:{errors[0].line}: {errors[0].reason}: {errors[0].text.strip()!r}"
                            + (f"\n  {listed}" if len(errors) > 1 else ""),
                            template=path, line=errors[0].line, locale=locale)
