"""Checks for templates, catalogs and rendered emails; each returns problems instead of raising."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

from babel.messages.catalog import Catalog, Message
from jinja2 import Environment, TemplateSyntaxError, nodes
from mjml.core.registry import register_core_components

from dunning.i18n.workflow import describe, forms, is_translated, placeholder_problems, single_number_forms

__all__ = ["GMAIL_CLIP_BYTES", "NEAR_CLIP_BYTES", "KNOWN_TAGS", "ENDING_TAGS", "DEFAULTS_TAGS", "URL_ATTRIBUTES",
           "COMPOSITION", "MESSAGE_BLOCKS", "Problem", "check_jinja_syntax", "check_mjml", "check_mjml_templates",
           "TRANSLATION_NAMES", "url_problem", "HtmlFinding", "check_html", "tag_problems", "check_catalog",
           "check_catalog_coverage", "count"]

GMAIL_CLIP_BYTES = 102 * 1024
NEAR_CLIP_BYTES = 90 * 1024
KNOWN_TAGS = frozenset(register_core_components()) | {"mjml", "mj-include"}
# MJML "ending tags": their content is raw HTML that MJML copies as-is, Jinja tags included.
ENDING_TAGS = frozenset({"mj-text", "mj-button", "mj-raw", "mj-table", "mj-navbar-link",
                         "mj-social-element", "mj-accordion-title", "mj-accordion-text",
                         "mj-style", "mj-title", "mj-preview"})
# Their children are attribute defaults named after components (mj-all, mj-class, mj-text ...).
DEFAULTS_TAGS = frozenset({"mj-attributes", "mj-html-attributes"})
URL_ATTRIBUTES = ("href", "src", "background", "background-url")
# Resolved before MJML runs, so they may stand anywhere; subject and preheader blocks are plain text.
COMPOSITION = frozenset({"extends", "block", "endblock", "include"})
MESSAGE_BLOCKS = ("subject", "preheader")
UNKNOWN, MESSAGE = "?", "#message"   # pseudo-components: a partial's unknown place; a text-only block
_STATEMENT = re.compile(r"\{%[-+]?\s*(\w*)\s*(.*?)\s*[-+]?%\}", re.S)
_EXTENDS = re.compile(r"\{%[-+]?\s*extends\b")
_COMMENT = re.compile(r"\{#.*?#\}|\{%[-+]?\s*raw\s*[-+]?%\}.*?\{%[-+]?\s*endraw\s*[-+]?%\}", re.S)
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding, printed `file:line: message` (`file: message` when it concerns the whole file)."""

    file: str
    line: int | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


# -- templates ----------------------------------------------------------------------------------

def check_jinja_syntax(name: str, source: str, environment: Environment) -> list[Problem]:
    """A Jinja syntax error, with its line; a name of the translation functions assigned to."""
    try:
        tree = environment.parse(source)
    except TemplateSyntaxError as exc:
        return [Problem(name, exc.lineno or 1, f"template syntax error: {exc.message}")]
    # A template that assigns `_` (a `{% for _ in … %}` loop, say) makes every `_()` of its email a call
    # at render time: the strings are no longer translated once per locale, and rendering slows down.
    return [Problem(name, node.lineno, f"`{node.name}` is assigned here ({{% for %}}, {{% set %}} or a macro "
                    "argument): it is a translation function; choose another name")
            for node in tree.find_all(nodes.Name) if node.ctx != "load" and node.name in TRANSLATION_NAMES]


TRANSLATION_NAMES = frozenset({"_", "gettext", "ngettext", "pgettext", "npgettext"})


def check_mjml(name: str, source: str, *, contexts: dict[str, tuple[str, ...]] | None = None,
               base: tuple[str, ...] | None = None) -> list[Problem]:
    """Unknown MJML tags, Jinja tags between components, non-https links and images without alt.

    contexts maps a block name (or "include:<template>") to the components enclosing it in the
    layout, learnt while scanning it; a child template's blocks are checked in that place.
    """
    source = _COMMENT.sub(lambda match: "\n" * match.group().count("\n"), source)
    if base is None:
        base = () if "<mjml" in source or _EXTENDS.search(source) else (UNKNOWN,)
    scanner = _MjmlScanner(name, {} if contexts is None else contexts, base)
    try:
        scanner.feed(source)
        scanner.close()
    except Exception as exc:  # html.parser is lenient; this is a last resort, never a crash
        scanner.problems.append(Problem(name, scanner.getpos()[0], f"cannot parse MJML: {exc}"))
    return scanner.problems


def check_mjml_templates(sources: Mapping[str, tuple[str, str]]) -> list[Problem]:
    """check_mjml over a template set (name → (shown name, source)): layouts, then children, then partials."""
    contexts: dict[str, tuple[str, ...]] = {}
    problems: list[Problem] = []
    for name in sorted(sources, key=lambda n: (_rank(sources[n][1]), n)):
        shown, source = sources[name]
        problems += check_mjml(shown, source, contexts=contexts, base=contexts.get(f"include:{name}"))
    return problems


def _rank(source: str) -> int:
    source = _COMMENT.sub("", source)
    return 0 if "<mjml" in source else 1 if _EXTENDS.search(source) else 2


def url_problem(value: str, *, template: bool = False) -> str | None:
    """Why a link or image URL is not acceptable in an email, or None when it is."""
    url = value.strip()
    if template and url.startswith(("{{", "{%")):
        return None  # computed when rendering; the rendered HTML is checked too
    scheme, _, rest = url.partition(":")
    if (scheme.lower() == "https" and rest.startswith("//") and len(rest) > 2) or (
            scheme.lower() == "mailto" and "@" in rest):
        return None
    return f"link is not an absolute https URL: {value!r}"


class _MjmlScanner(HTMLParser):
    """One pass over an MJML template, tracking which component encloses each piece of text."""

    def __init__(self, name: str, contexts: dict[str, tuple[str, ...]], base: tuple[str, ...]) -> None:
        super().__init__(convert_charrefs=True)
        self.name, self.contexts, self.stack = name, contexts, list(base)
        self.blocks: list[list[str] | None] = []   # per open {% block %}: the stack to restore, if any
        self.child = False
        self.problems: list[Problem] = []

    def _add(self, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(self.name, line or self.getpos()[0], message))

    def _in_content(self) -> bool:
        return bool(self.stack) and self.stack[-1] in ENDING_TAGS | {MESSAGE}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check_element(tag, attrs)
        if not self._in_content():
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check_element(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._in_content() and tag != self.stack[-1]:
            return
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        for match in _STATEMENT.finditer(data):
            word, arg = match.group(1), match.group(2)
            if word in COMPOSITION:
                self._compose(word, arg)
            elif not self._in_content() and (not self.stack or self.stack[-1] != UNKNOWN):
                line = self.getpos()[0] + data.count("\n", 0, match.start())
                self._add(f"Jinja tag {{% {word} %}} between MJML components is dropped or moved by "
                          "MJML: wrap it in <mj-raw>", line)

    def _compose(self, word: str, arg: str) -> None:
        """Follow {% extends %}, {% block %} and {% include %}, which are resolved before MJML runs."""
        target = arg.split()[0].strip("\"'") if arg.split() else ""
        if word == "extends":
            self.child = True
        elif word == "include":
            self.contexts.setdefault(f"include:{target}", tuple(self.stack))
        elif word == "block":
            self.contexts.setdefault(target, tuple(self.stack))
            saved = None
            if self.child and not self.blocks:
                saved, self.stack = self.stack, list(self.contexts.get(target, (UNKNOWN,)))
            self.blocks.append(saved)
            if target in MESSAGE_BLOCKS:
                self.stack.append(MESSAGE)
        elif self.blocks:  # endblock
            if self.stack and self.stack[-1] == MESSAGE:
                self.stack.pop()
            saved = self.blocks.pop()
            if saved is not None:
                self.stack = saved

    def _check_element(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent = self.stack[-1] if self.stack else None
        if not self._in_content() and parent not in DEFAULTS_TAGS and tag not in KNOWN_TAGS:
            if tag.startswith("mj-"):
                self._add(f"unknown MJML tag <{tag}>")
            elif parent != UNKNOWN:
                self._add(f"<{tag}> is not an MJML component: put HTML inside <mj-text> or <mj-raw>")
        if parent in DEFAULTS_TAGS:
            return
        values = dict(attrs)
        for attribute in URL_ATTRIBUTES:
            if attribute in values and (why := url_problem(values[attribute] or "", template=True)):
                self._add(f"<{tag} {attribute}>: {why}")
        if tag in ("img", "mj-image") and values.get("alt") is None:
            self._add(f"<{tag}> has no alt text")


# -- rendered HTML ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HtmlFinding:
    message: str
    needle: str | None = None   # text to look for in the sources, to point at the line it came from
    severity: Literal["error", "warning"] = "error"


def check_html(html: str) -> list[HtmlFinding]:
    """Links absolute https, images with alt, size under Gmail's clipping limit."""
    collector = _HtmlCollector()
    collector.feed(html)
    collector.close()
    findings = list(collector.findings)
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        findings.append(HtmlFinding(f"rendered HTML is {size / 1024:.0f} KB: Gmail clips messages "
                                    f"over {GMAIL_CLIP_BYTES // 1024} KB"))
    elif size > NEAR_CLIP_BYTES:
        findings.append(HtmlFinding(f"rendered HTML is {size / 1024:.0f} KB, close to Gmail's "
                                    f"{GMAIL_CLIP_BYTES // 1024} KB clipping", severity="warning"))
    return findings


class _HtmlCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.findings: list[HtmlFinding] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for attribute in URL_ATTRIBUTES:
            if attribute in values and (why := url_problem(values[attribute] or "")):
                self.findings.append(HtmlFinding(f"rendered <{tag} {attribute}>: {why}",
                                                 values[attribute] or None))
        if tag == "img" and values.get("alt") is None:
            self.findings.append(HtmlFinding("rendered <img> has no alt text", values.get("src")))

    handle_startendtag = handle_starttag


# -- catalogs -----------------------------------------------------------------------------------

def tag_problems(message: Message) -> list[str]:
    """How each translated form's HTML tags differ from its msgid's."""
    ids, strings = forms(message)
    expected = sorted(_HTML_TAG.findall(ids[-1]))
    problems = []
    for index, string in enumerate(strings):
        got = sorted(_HTML_TAG.findall(string))
        if string and got != expected:
            where = f"msgstr[{index}]" if len(ids) > 1 else "msgstr"
            problems.append(f"{where} HTML tags {got} differ from the msgid's {expected}")
    return problems


def check_catalog(name: str, catalog: Catalog, *, require_translations: bool = True) -> list[Problem]:
    """Untranslated and fuzzy messages, and translations that break placeholders or HTML tags.

    require_translations=False for the catalog of the language the msgids are written in.
    """
    problems, single_forms = [], single_number_forms(catalog)
    for message in catalog:
        if not message.id:
            continue
        line, quoted = message.lineno, describe(message)
        if message.fuzzy:
            problems.append(Problem(name, line, f"fuzzy translation of {quoted}: review it and "
                                                "remove the fuzzy flag"))
        elif require_translations and not is_translated(message):
            problems.append(Problem(name, line, f"untranslated: {quoted}"))
        for problem in placeholder_problems(message, single_forms) + tag_problems(message):
            problems.append(Problem(name, line, f"{quoted}: {problem}"))
    return problems


def check_catalog_coverage(name: str, catalog: Catalog, template: Catalog) -> list[Problem]:
    """Messages the templates and code use that the catalog lacks (reported where they are used)."""
    problems = []
    for message in template:
        if message.id and catalog.get(message.id, message.context) is None:
            where, line = message.locations[0] if message.locations else (name, None)
            problems.append(Problem(where, line or None, f"{describe(message)} is missing from {name}: "
                                                      "run `dunning i18n extract` and `dunning i18n update`"))
    return problems


def count(problems: Iterable[Problem]) -> tuple[int, int]:
    """(errors, warnings)."""
    problems = list(problems)
    errors = sum(1 for problem in problems if problem.severity == "error")
    return errors, len(problems) - errors
