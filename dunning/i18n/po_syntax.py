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
    """Every line of a .po file that is not blank, a comment, a keyword with its string, or a string; a msgid
    without its msgstr, and a message defined twice."""
    errors = []
    entries = _Entries()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        reason = _line_problem(line)
        if reason is not None:
            errors.append(PoSyntaxError(number, reason, line))
            entries.skip(line)
        else:
            errors += entries.read(number, line)
    return sorted(errors + entries.end(), key=lambda error: error.line)


class _Entries:
    """Follows the keywords: each msgid needs its msgstr, and each (msgctxt, msgid) is defined once."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], int] = {}
        self.keyword = ""
        self.parts: dict[str, list[str]] = {"msgctxt": [], "msgid": []}
        self.start = (0, "")   # the current msgid's line number and text

    def read(self, number: int, line: str) -> list[PoSyntaxError]:
        """The problems a well-formed line reveals about its entry."""
        string = _LINE.match(line).group(1)  # type: ignore[union-attr]  # well formed: _line_problem said so
        keyword = "" if line.lstrip().startswith('"') else line.split(None, 1)[0]
        errors = []
        if keyword in ("msgctxt", "msgid"):
            errors = self.end()
            if keyword == "msgctxt" or self.keyword != "msgctxt":
                self.parts["msgctxt"] = []
            if keyword == "msgid":
                self.parts["msgid"], self.start = [], (number, line)
        elif keyword.startswith("msgstr") and self.keyword in ("msgid", "msgid_plural"):
            errors = self._defined()
        self.keyword = keyword or self.keyword
        if self.keyword in self.parts:
            self.parts[self.keyword].append(string)
        return errors

    def skip(self, line: str) -> None:
        """A malformed line: its keyword still counts (a msgstr answers its msgid), its string is lost."""
        word = line.split(None, 1)[0]
        if re.fullmatch(_KEYWORD, word):
            self.keyword = word

    def _defined(self) -> list[PoSyntaxError]:
        key = ("".join(self.parts["msgctxt"]), "".join(self.parts["msgid"]))
        first = self.seen.setdefault(key, self.start[0])
        if first == self.start[0]:
            return []
        return [PoSyntaxError(self.start[0], f"duplicate message definition (first on line {first})", self.start[1])]

    def end(self) -> list[PoSyntaxError]:
        """A msgid left without its msgstr (at the next entry, or at the end of the file)."""
        if self.keyword not in ("msgid", "msgid_plural"):
            return []
        return [PoSyntaxError(self.start[0], "missing msgstr: the msgid has no translation line", self.start[1])]


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
