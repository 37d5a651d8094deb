"""Checks of what readers and mail clients meet: text outside the catalog, links in the text part, structure."""

from __future__ import annotations

import re
import unicodedata

from dunning.emails.jinja_env import CARD_BRANDS
from dunning.emails.lint import HtmlFinding, Problem

__all__ = ["ALLOWED_WORDS", "check_bare_text", "text_link_problems", "check_structure"]

# Words a template may write outside a translation tag: brand names, the same in every language.
ALLOWED_WORDS = frozenset(word for name in CARD_BRANDS.values() for word in name.split())
_HIDDEN = [re.compile(pattern, re.S) for pattern in (
    r"\{#.*?#\}",                                                     # Jinja comments
    r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}",                    # translated sentences
    r"\{\{.*?\}\}|\{%.*?%\}",                                         # values and tags
    r"<(mj-style|style|mj-attributes|mj-head)\b.*?</\1>",             # styles and attribute defaults
    r"<[^<>]*>", r"&#?\w+;")]                                         # tags (attributes included), entities
_WORD = re.compile(r"[^\W\d_]{2,}")
_URL = re.compile(r"https?://\S+")
_EMAIL = re.compile(r"[^\s<>()\[\]]+@[^\s<>()\[\]]+\.[^\s<>()\[\]]+")


def check_bare_text(name: str, source: str) -> list[Problem]:
    """Words a template writes outside `{% trans %}` and `_()`: readers of other languages would get them as is."""
    for pattern in _HIDDEN:
        source = pattern.sub(lambda match: "\n" * match.group().count("\n") or " ", source)
    problems = []
    for number, line in enumerate(source.splitlines(), start=1):
        words = [word for word in _WORD.findall(line) if word not in ALLOWED_WORDS]
        if words:
            problems.append(Problem(name, number, f"text outside a translation tag: {' '.join(words)!r}: "
                                                  "put it in {% trans %} or _() (brand names: ALLOWED_WORDS)"))
    return problems


def _invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cf" or char in "\u00a0\u202f"


def text_link_problems(text: str) -> list[str]:
    """Links of a text part that mail clients would miss or cut: a URL not standing between spaces, or an
    invisible character (bidi isolate, mark, zero-width) touching or inside a URL or address."""
    problems = []
    for pattern in (_URL, _EMAIL):
        for match in pattern.finditer(text):
            found, start = match.group(), match.start()
            before = text[start - 1] if start else "\n"
            hidden = [c for c in found + before if _invisible(c)]
            if hidden:
                problems.append(f"text part: {found.strip(''.join(hidden))!r} is touched by an invisible character "
                                f"(U+{ord(hidden[0]):04X}): mail clients do not find it as a link; write it with "
                                "|link, with spaces around it")
            elif pattern is _URL and not before.isspace():
                problems.append(f"text part: {found!r} does not stand after a space or at the start of its line")
    return problems


_HEADING = re.compile(r"<h[12]\b", re.I)
_HEADER_CELL = re.compile(r"<th\b", re.I)
_CAPTION = re.compile(r"<caption\b", re.I)
_BARE_LINK = re.compile(r"<a\b[^>]*>\s*(?:<span\b[^>]*>\s*)?((?:https?://|www\.)[^\s<]+)\s*(?:</span>\s*)?</a>", re.I)


def check_structure(html: str) -> list[HtmlFinding]:
    """A heading element, a caption where a table has header cells, and no link whose text is a bare URL."""
    findings = [HtmlFinding(f"rendered link shows a bare URL as its text: {url!r}; say where it leads", url)
                for url in dict.fromkeys(_BARE_LINK.findall(html))]
    if not _HEADING.search(html):
        findings.append(HtmlFinding("rendered HTML has no heading element (<h1>): the title is only styled text"))
    if _HEADER_CELL.search(html) and not _CAPTION.search(html):
        findings.append(HtmlFinding("rendered table with header cells has no <caption>"))
    return findings
