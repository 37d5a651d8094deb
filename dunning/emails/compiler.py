"""A notice's templates → Jinja sources, built once: the MJML file compiled to HTML, the text file flattened.

MJML: after composition (dunning.emails.compose), every Jinja tag is swapped for an opaque placeholder
that MJML carries through as text, then put back. A tag that MJML dropped, repeated or moved (a
`{% if %}` between components outside `<mj-raw>`) fails the compile with its file and line. The
`subject` and `preheader` blocks are kept apart: they are rendered as plain text.

MJML indents its output for reading; the indentation, trailing blanks and blank lines are dropped
(a third of the bytes of every email to write, encode and send) where the HTML renders the same
without them: a run of blanks that holds a line break becomes that line break, which HTML reads as
the same single space (a line that would start with a dot keeps one space, so that SMTP need not
double the dot). A document that keeps blanks as written (`<pre>`, `<textarea>`, CSS
`white-space: pre…` or `break-spaces`) is left as MJML wrote it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from jinja2 import Environment

from dunning.emails.compose import OUTPUT_WORDS, Composer, Source, Tag, Unit, join, tag_error
from dunning.errors import TemplateError

__all__ = ["MESSAGE_BLOCKS", "Compiled", "compile_notice", "compile_mjml"]

MESSAGE_BLOCKS = ("subject", "preheader")
_PLACEHOLDER = "\ue000{}\ue001"
_PLACEHOLDER_RE = re.compile("\ue000(\\d+)\ue001")
_WRAP_HINT = "put Jinja tags that stand between MJML components inside <mj-raw>"
_BLANKS_AROUND_LINE_BREAKS = re.compile(r"[ \t]*\n[ \t\r\n]*")  # not \s: a no-break space is content
_BLANKS_KEPT = re.compile(r"<pre\b|<textarea\b|white-space\s*:\s*(?:pre|break-spaces)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Compiled:
    """The Jinja sources of one notice (HTML, text, subject, preheader) and the files they come from."""

    notice: str
    html: Source
    text: Source
    subject: Source
    preheader: Source
    files: tuple[Path, ...]
    digests: tuple[str, ...] = ()   # of each file's text as compiled ("" if it changed meanwhile)


def compile_notice(env: Environment, templates_dir: Path, notice: str) -> Compiled:
    """Build `<notice>.mjml` (through MJML) and `<notice>.txt` into flat Jinja sources."""
    html_composer = Composer(env, templates_dir, text=False, skip=MESSAGE_BLOCKS)
    units, blocks = html_composer.compose(f"{notice}.mjml")
    subject, preheader = (join(html_composer.fill(blocks.get(key, []), blocks, (), skip=()))
                          for key in MESSAGE_BLOCKS)
    html = compile_mjml(units, f"{notice}.mjml")
    text_composer = Composer(env, templates_dir, text=True)
    text = join(text_composer.compose(f"{notice}.txt")[0])
    files = tuple(dict.fromkeys(html_composer.files + text_composer.files))
    digests = {**html_composer.digests}
    for path, digest in text_composer.digests.items():
        digests[path] = digest if digests.get(path, digest) == digest else ""
    return Compiled(notice, html, text, subject, preheader, files, tuple(digests[path] for path in files))


def compile_mjml(units: list[Unit], name: str) -> Source:
    """Composed MJML units → the Jinja source of the HTML document, tags where MJML left them."""
    tags = [u for u in units if isinstance(u, Tag)]
    numbers = iter(range(len(tags)))
    source = "".join(u if isinstance(u, str) else _PLACEHOLDER.format(next(numbers)) for u in units)
    if "<mj-include" in source:
        raise TemplateError(f'{name}: <mj-include> is not supported: use {{% include "partial.mjml" %}}',
                            template=name)
    return _restore(_squeeze_blanks(_run_mjml(source, name)), tags)


def _run_mjml(source: str, name: str) -> str:
    from mjml import mjml_to_html  # slow to import (bench/README.md): paid only when a build is not cached

    try:
        result = mjml_to_html(source)
    except Exception as exc:  # the MJML port raises plain ValueError/AssertionError on bad documents
        raise TemplateError(f"MJML cannot compile {name}: {exc}", template=name) from None
    if result.errors:
        raise TemplateError(f"MJML cannot compile {name}: {'; '.join(result.errors)}", template=name)
    html: str = result.html
    return html


def _squeeze_blanks(html: str) -> str:
    """The HTML without its layout blanks (see the module docstring), unless it keeps blanks as written."""
    if _BLANKS_KEPT.search(html):
        return html
    # A line may not start with a dot as CSS rules do: SMTP would have to double it (a copy of every email).
    return _BLANKS_AROUND_LINE_BREAKS.sub("\n", html).strip(" \t\r\n").replace("\n.", "\n .")


def _restore(html: str, tags: list[Tag]) -> Source:
    pieces, lines, order = [], [], []
    line, position = 1, 0
    for match in _PLACEHOLDER_RE.finditer(html):
        chunk = html[position:match.start()]
        tag = tags[int(match.group(1))]
        line += chunk.count("\n")
        lines.append((line, tag.template, tag.line))
        pieces += [chunk, tag.text]
        line += tag.text.count("\n")
        order.append(int(match.group(1)))
        position = match.end()
    pieces.append(html[position:])
    _check(order, tags)
    return Source("".join(pieces), tuple(lines))


def _check(order: list[int], tags: list[Tag]) -> None:
    counts = Counter(order)
    for index, tag in enumerate(tags):
        if not counts[index]:
            raise tag_error(tag, f"{tag.text!r} was dropped by the MJML compiler: {_WRAP_HINT}")
        if counts[index] > 1 and tag.word not in OUTPUT_WORDS:
            raise tag_error(tag, f"{tag.text!r} was repeated by the MJML compiler (as in <mj-title>, which "
                                 "MJML copies): only {{ … }} and {% trans %} may go there")
    statements = [i for i in order if tags[i].word not in OUTPUT_WORDS]
    for before, after in pairwise(statements):
        if after < before:
            raise tag_error(tags[after], f"{tags[after].text!r} was moved by the MJML compiler: {_WRAP_HINT}")
