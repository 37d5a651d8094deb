"""Template composition at compile time: `{% extends %}`, `{% block %}` and `{% include %}` resolved once.

A template is read as a list of units: text, and Jinja tags kept as written (a whole
`{% trans %}…{% endtrans %}` or `{% raw %}` block is one tag). Composition inlines the layout,
the blocks and the partials, so what is rendered per email is one flat template.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, TemplateNotFound, TemplateSyntaxError
from jinja2.loaders import split_template_path

from dunning.errors import TemplateError

COMMENT = "#"                                  # the word of a {# comment #} tag
OUTPUT_WORDS = (None, "trans", "raw")          # tags that write text: {{ … }}, {% trans %}, {% raw %}
_COMPOSE_WORDS = ("block", "endblock", "include", "extends")


@dataclass(frozen=True, slots=True)
class Tag:
    """One Jinja tag as written, with the template and line it comes from."""

    text: str
    template: str
    line: int
    word: str | None          # first word of a {% %} statement ("if", "block", "trans"); None for {{ }}
    arg: str | None = None    # block name, or the literal template name of extends/include


Unit = str | Tag


@dataclass(frozen=True, slots=True)
class Source:
    """A generated Jinja source and, for each of its tags, the template line it was written on."""

    text: str
    lines: tuple[tuple[int, str, int], ...] = field(repr=False)   # (line here, template, line there)

    def origin(self, line: int) -> tuple[str, int] | None:
        """The template and line that a line of this source comes from."""
        index = bisect.bisect_right(self.lines, (line, "\uffff", 0)) - 1
        return (self.lines[index][1], self.lines[index][2]) if index >= 0 else None


def scan(env: Environment, source: str, name: str) -> list[Unit]:
    """A template's text and tags, in order."""
    units: list[Unit] = []
    tokens = env.lexer.tokeniter(source, name)
    for line, kind, value in tokens:
        if kind == "data":
            units.append(value)
        elif kind == "variable_begin":
            units.append(Tag(value + _until(tokens, "variable_end")[0], name, line, None))
        elif kind == "raw_begin":
            units.append(Tag(value + _until(tokens, "raw_end")[0], name, line, "raw"))
        elif kind == "comment_begin":
            units.append(Tag(value + _until(tokens, "comment_end")[0], name, line, COMMENT))
        elif kind == "block_begin":
            units.append(_statement(env, tokens, value, name, line))
    return units


def _until(tokens: Iterator[tuple[int, str, str]], end: str) -> tuple[str, list[tuple[str, str]]]:
    text: list[str] = []
    significant: list[tuple[str, str]] = []
    for _, kind, value in tokens:
        text.append(value)
        if kind == end:
            return "".join(text), significant
        if kind != "whitespace":
            significant.append((kind, value))
    raise TemplateError(f"unexpected end of template, expected {end}")


def _statement(env: Environment, tokens: Iterator[tuple[int, str, str]], begin: str, name: str, line: int) -> Tag:
    rest, words = _until(tokens, "block_end")
    word = words[0][1] if words and words[0][0] == "name" else None
    text = begin + rest
    if word == "trans":
        while True:
            inner, _ = _until(tokens, "block_begin")
            closing, closing_words = _until(tokens, "block_end")
            text += inner + closing
            if closing_words and closing_words[0] == ("name", "endtrans"):
                return Tag(text, name, line, "trans")
    arg = None
    if word == "block" and len(words) > 1:
        arg = words[1][1]
    elif word in ("extends", "include") and len(words) == 2 and words[1][0] == "string":
        # Jinja's own unescaping, not ast.literal_eval: CPython 3.11's ast.parse is not safe beside another
        # thread's, and the studio renders in worker threads.
        arg = next(env.lexer.wrap(iter([(line, "string", words[1][1])]), name)).value
    return Tag(text, name, line, word, arg)


def standalone_lines(units: list[Unit]) -> list[Unit]:
    """A line holding only silent tags ({% if %}, {% endfor %}, comments) leaves no line in the output."""
    out = list(units)
    at_line_start, index = True, 0
    while index < len(out):
        unit = out[index]
        if isinstance(unit, str):
            at_line_start = unit.endswith("\n") if unit else at_line_start
            index += 1
            continue
        if not (_silent(unit) and at_line_start):
            at_line_start, index = False, index + 1
            continue
        after = index + 1
        while after < len(out) and (out[after] == "" or _silent(out[after])):
            after += 1
        following = out[after] if after < len(out) else ""
        if isinstance(following, str) and following.startswith("\n"):
            out[after] = following[1:]   # the tags' line ends here: drop its line break
        else:
            at_line_start = False        # text follows on the same line: not a line of tags
        index = after
    return out


def _silent(unit: Unit) -> bool:
    return isinstance(unit, Tag) and unit.word not in (*OUTPUT_WORDS, "include")


class Composer:
    """Resolves extends, blocks and includes of one template, remembering every file it reads."""

    def __init__(self, env: Environment, templates_dir: Path, *, text: bool,
                 skip: tuple[str, ...] = ()) -> None:
        self.env, self.templates_dir, self.text, self.skip = env, Path(templates_dir), text, skip
        self.files: list[Path] = []
        self.digests: dict[Path, str] = {}   # each file's text as read; "" when two reads differed

    def units(self, name: str) -> list[Unit]:
        """One template's units (syntax checked; a final newline dropped, as Jinja does)."""
        try:
            path = self.templates_dir.joinpath(*split_template_path(name))
            source = path.read_text(encoding="utf-8")
        except (OSError, TemplateNotFound) as exc:
            raise TemplateError(f"cannot read template {name}: {exc}", template=name) from None
        self.files.append(path)
        digest = text_digest(source)
        self.digests[path] = digest if self.digests.get(path, digest) == digest else ""
        source = source[:-1] if source.endswith("\n") else source
        try:
            self.env.parse(source, name, str(path))
            units = scan(self.env, source, name)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"{name} line {exc.lineno}: {exc.message}", template=name,
                                line=exc.lineno) from None
        return standalone_lines(units) if self.text else units

    def compose(self, name: str, overrides: dict[str, list[Unit]] | None = None,
                stack: tuple[str, ...] = ()) -> tuple[list[Unit], dict[str, list[Unit]]]:
        """The flat units of a template, and the final content of every block."""
        if name in stack:
            raise TemplateError(f"{name} extends or includes itself (via {' → '.join(stack)})", template=name)
        units = self.units(name)
        merged = {**_blocks(units), **(overrides or {})}
        parent = next((u for u in units if isinstance(u, Tag) and u.word == "extends"), None)
        if parent is not None:
            if parent.arg is None:
                raise tag_error(parent, "extends needs a literal template name here")
            return self.compose(parent.arg, merged, (*stack, name))
        return self.fill(units, merged, (*stack, name), skip=self.skip), merged

    def fill(self, units: list[Unit], blocks: dict[str, list[Unit]], stack: tuple[str, ...],
             skip: tuple[str, ...]) -> list[Unit]:
        """Units with blocks replaced by their final content, partials inlined, comments dropped."""
        out: list[Unit] = []
        index = 0
        while index < len(units):
            unit = units[index]
            index += 1
            if not isinstance(unit, Tag) or unit.word not in (*_COMPOSE_WORDS, COMMENT):
                out.append(unit)
            elif unit.word == "block":
                end = _block_end(units, index - 1)
                if unit.arg not in skip:
                    out += self.fill(blocks.get(unit.arg or "", units[index:end]), blocks, stack, skip)
                index = end + 1
            elif unit.word == "include":
                if unit.arg is None:
                    raise tag_error(unit, "include needs a literal template name here")
                out += self.compose(unit.arg, None, stack)[0]
            elif unit.word in ("endblock", "extends"):
                raise tag_error(unit, f"unexpected {unit.word}")
        return out


def _blocks(units: list[Unit]) -> dict[str, list[Unit]]:
    found: dict[str, list[Unit]] = {}
    for index, unit in enumerate(units):
        if isinstance(unit, Tag) and unit.word == "block":
            if unit.arg in found:
                raise tag_error(unit, f"block {unit.arg!r} defined twice")
            found[unit.arg or ""] = units[index + 1:_block_end(units, index)]
    return found


def _block_end(units: list[Unit], start: int) -> int:
    depth = 0
    for index in range(start, len(units)):
        unit = units[index]
        if isinstance(unit, Tag) and unit.word in ("block", "endblock"):
            depth += 1 if unit.word == "block" else -1
            if depth == 0:
                return index
    raise tag_error(units[start], "block is never closed")  # type: ignore[arg-type]


def join(units: list[Unit]) -> Source:
    """Units as one Jinja source, with the origin of each tag's line."""
    pieces, lines, line = [], [], 1
    for unit in units:
        if isinstance(unit, Tag):
            lines.append((line, unit.template, unit.line))
            text = unit.text
        else:
            text = unit
        pieces.append(text)
        line += text.count("\n")
    return Source("".join(pieces), tuple(lines))


def text_digest(text: str) -> str:
    """The SHA-256 of a template's text, as a build that read it remembers it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tag_error(tag: Tag, message: str) -> TemplateError:
    """A TemplateError pointing at a tag's template and line."""
    return TemplateError(f"{tag.template} line {tag.line}: {message}", template=tag.template, line=tag.line)
