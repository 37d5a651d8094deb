"""Notice + locale + context → subject, HTML and text: MJML compiled once, sandboxed Jinja per email.

Per notice, the MJML and text templates are built into flat Jinja sources once (dunning.emails.compiler),
rebuilt when one of their files changes. Per locale, those sources are compiled once into Jinja
templates of that locale's environment (its constant strings already translated), recompiled when
its catalog changes. Both are kept on disk (dunning.emails.template_cache), so that the next process, and
each delivery worker, starts rendering without compiling. Per email, only the four templates are
rendered.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import CodeType
from typing import Any, Literal

from babel.support import NullTranslations
from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2 import TemplateError as JinjaError

from dunning.delivery.mime import BodyPieces, encoded_constants
from dunning.emails.bounds import DEFAULT_BOUND, Bounds, ValueTooLarge
from dunning.emails.compiler import Compiled, compile_notice
from dunning.emails.compose import Source
from dunning.emails.jinja_env import RENDER_DEADLINE, EmailEnvironment, RenderTimeout
from dunning.emails.template_cache import (
    TemplateCache,
    default_cache_dir,
    digest,
    dump_build,
    dump_code,
    load_build,
    load_code,
    runtime_tag,
)
from dunning.errors import EmailTooLarge, RenderTooSlow, TemplateError
from dunning.i18n.catalogs import Catalogs, LocaleChoice
from dunning.i18n.formats import Formats

__all__ = ["PARTS", "RENDER_SECONDS", "RenderedEmail", "Renderer", "tidy_text"]

RENDER_SECONDS = 10.0  # i18n.render_seconds's default: an email renders in milliseconds

PARTS = ("subject", "preheader", "html", "text")
_NOTICE_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_BATCH = 64  # outputs of a template taken between two checks of the size and the deadline
_READIED_KEPT = 1024   # (notice, locale tag) pairs whose lookups a renderer keeps


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """One email, ready for MIME: subject, preheader, HTML and text parts, language and direction."""

    notice: str
    locale: str      # the catalog used (Babel form); its language differs from the request on a fallback
    subject: str
    preheader: str
    html: str
    text: str
    lang: str        # BCP 47 for <html lang> and Content-Language, e.g. "fr-FR" or "ar"
    dir: str         # "ltr" | "rtl"
    # the HTML as its template's outputs, so that MIME encodes the template's constant text once, not per email
    html_pieces: BodyPieces | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class _Built:
    compiled: Compiled
    paths: tuple[str, ...]
    signature: tuple[tuple[int, int] | None, ...]
    checked: float


@dataclass(frozen=True, slots=True)
class _Localized:
    compiled: Compiled
    env: EmailEnvironment
    templates: dict[str, Template]
    globals: dict[str, Any]   # the environment's globals, under each email's variables
    known: dict[str, bytes]   # the HTML template's constant text, encoded for MIME


class Renderer:
    """Renders notices from templates_dir (MJML + text) with catalogs from locales_dir."""

    def __init__(self, templates_dir: Path, locales_dir: Path, default_locale: str = "en", *,
                 reload_interval: float = 1.0, cache_dir: Path | Literal[False] | None = None,
                 latin_digits: bool = False, render_seconds: float = RENDER_SECONDS,
                 max_output: int | None = None) -> None:
        """reload_interval: seconds between checks of the template and .po files for changes (0: every email).

        cache_dir: where compiled templates are kept for the next processes (default: the user's cache
        directory, see template_cache.default_cache_dir; False: nowhere). latin_digits: numbers in Latin
        digits even where the locale's default numbering system has others (ar_EG). render_seconds: the longest
        an email may take to render (a template's loop that does not end is stopped). max_output: the most
        characters one part of an email may have (the render stops there, raising EmailTooLarge).
        """
        self.render_seconds, self.max_output = render_seconds, max_output
        self.templates_dir = Path(templates_dir)
        self.reload_interval = reload_interval
        self.latin_digits = latin_digits
        self.catalogs = Catalogs(Path(locales_dir), default_locale, reload_interval=reload_interval)
        self.environment = EmailEnvironment()   # composes and checks templates; renders nothing
        directory = default_cache_dir() if cache_dir is None else cache_dir
        self.cache = TemplateCache.open(Path(directory)) if directory is not False else None
        self._slot = digest(str(self.templates_dir.resolve()), str(self.catalogs.locales_dir.resolve()))[:24]
        self._built: dict[str, _Built] = {}
        self._failed: dict[str, tuple[TemplateError, float]] = {}
        self._envs: dict[tuple[str, str], tuple[NullTranslations, EmailEnvironment, str]] = {}
        self._localized: dict[tuple[str, str, str], _Localized] = {}
        self._trees: dict[tuple[str, str], tuple[Source, nodes.Template]] = {}   # (notice, part): parsed source
        self._readied: dict[tuple[str, str], tuple[LocaleChoice, _Localized, float]] = {}   # (notice, locale)

    @property
    def available_locales(self) -> frozenset[str]:
        """Babel-form ids of the locales with a catalog: {"en", "fr", ...}."""
        return self.catalogs.available

    def choose_locale(self, locale: str) -> LocaleChoice:
        """The catalog an email for this locale is written with; `.fallback` tells when the language differs."""
        return self.catalogs.choose(locale)

    def compile(self, notice: str) -> Compiled:
        """The notice's flat Jinja sources: built once, rebuilt when one of its files changes."""
        built, now = self._built.get(notice), time.monotonic()
        if built is not None and now - built.checked < self.reload_interval:
            return built.compiled
        if built is not None and _signature(built.paths) == built.signature:
            built.checked = now   # when the files were last checked, not when last asked for
            return built.compiled
        failed = self._failed.get(notice)
        if failed is not None and now - failed[1] < self.reload_interval:
            error = failed[0]   # a broken template fails each email at once, not after a fresh compile
            raise TemplateError(error.message, template=error.template, line=error.line)
        if not _NOTICE_NAME.match(notice):
            raise TemplateError(f"not a notice name: {notice!r}", template=notice)
        try:
            compiled = self._build(notice)
        except TemplateError as exc:
            self._failed[notice] = (exc, now)
            raise
        self._failed.pop(notice, None)
        paths = tuple(str(path) for path in compiled.files)
        self._built[notice] = _Built(compiled, paths, _signature(paths), now)
        return compiled

    def prepare(self, notice: str, locale: str) -> None:
        """Compile a notice for a locale without rendering it: a template that does not compile raises now."""
        choice = self.catalogs.choose(locale)
        try:
            self._localize(self.compile(notice), choice)
        except TemplateError as exc:
            raise _with_locale(exc, choice.locale) from None

    def render(self, notice: str, locale: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Render one email; raises TemplateError naming the template, line and locale.

        locale is normally one of available_locales; any other tag is negotiated (`fr-CA` → fr,
        `pt-BR` → the default, logged) and the email's `locale` tells which catalog was used.
        """
        choice, localized = self._ready(notice, locale)
        templates = localized.templates
        variables = {**localized.globals, **context}
        deadline = RENDER_DEADLINE.set(time.monotonic() + self.render_seconds)
        try:
            subject = " ".join(_run(templates["subject"], variables, self.max_output)[1].split())
            preheader = " ".join(_run(templates["preheader"], variables, self.max_output)[1].split())
            variables.update(subject=subject, preheader=preheader)
            outputs, html = _run(templates["html"], variables, self.max_output)
            text = tidy_text(_run(templates["text"], variables, self.max_output)[1])
        except _TooLarge:
            raise EmailTooLarge(f"{notice}: its email passes {self.max_output} characters "
                                "(delivery.max_message_bytes): a template that writes too much?",
                                template=notice, locale=choice.locale) from None
        except RenderTimeout:
            raise RenderTooSlow(f"{notice}: rendering took longer than {self.render_seconds:g} s "
                                "(i18n.render_seconds): a loop in its template that does not end?",
                                template=notice, locale=choice.locale) from None
        except TemplateError as exc:
            raise _with_locale(exc, choice.locale) from None
        except Exception as exc:
            raise _render_error(exc, localized.compiled, choice.locale) from exc
        finally:
            RENDER_DEADLINE.reset(deadline)
        return RenderedEmail(notice=notice, locale=choice.locale, subject=subject, preheader=preheader,
                             html=html, text=text, lang=choice.lang, dir=choice.dir,
                             html_pieces=BodyPieces(html, outputs, localized.known))

    def _ready(self, notice: str, locale: str) -> tuple[LocaleChoice, _Localized]:
        """The catalog chosen for a locale and the notice's templates in it, looked up in full (and their files
        checked for changes) at most once per reload interval."""
        key, now = (notice, locale), time.monotonic()
        ready = self._readied.get(key)
        if ready is not None and now - ready[2] < self.reload_interval:
            return ready[0], ready[1]
        choice = self.catalogs.choose(locale)
        try:
            localized = self._localize(self.compile(notice), choice)
        except TemplateError as exc:
            raise _with_locale(exc, choice.locale) from None
        if len(self._readied) >= _READIED_KEPT:   # locale tags come from the accounts: kept bounded
            self._readied.clear()
        self._readied[key] = (choice, localized, now)
        return choice, localized

    def _build(self, notice: str) -> Compiled:
        """compile_notice, or the same build from the cache while its files keep their text."""
        if self.cache is None:
            return compile_notice(self.environment, self.templates_dir, notice)
        slot, key = f"build-{self._slot}-{notice}", digest(runtime_tag(), notice)
        with self.cache.locked(slot):
            compiled = load_build(self.cache.load(slot, key), notice, self.templates_dir)
            if compiled is None:
                compiled = compile_notice(self.environment, self.templates_dir, notice)
                payload = dump_build(compiled, self.templates_dir)
                if payload is not None:
                    self.cache.store(slot, key, payload)
        return compiled

    def _localize(self, compiled: Compiled, choice: LocaleChoice) -> _Localized:
        env, catalog = self._environment(choice)
        key = (compiled.notice, choice.locale, choice.format_locale)
        localized = self._localized.get(key)
        if localized is None or localized.compiled is not compiled or localized.env is not env:
            codes = self._code(compiled, env, catalog, choice)
            templates = {part: env.template(code) for part, code in zip(PARTS, codes, strict=True)}
            known = encoded_constants(_constants(codes[PARTS.index("html")]))
            localized = self._localized[key] = _Localized(compiled, env, templates, dict(env.globals), known)
        return localized

    def _code(self, compiled: Compiled, env: EmailEnvironment, catalog: str,
              choice: LocaleChoice) -> list[CodeType]:
        """The four parts compiled in this locale's environment, or their code from the cache."""
        if self.cache is None:
            return self._compile_parts(compiled, env)
        slot = f"code-{self._slot}-{compiled.notice}-{choice.locale}-{choice.format_locale}"
        key = digest(runtime_tag(), catalog, *(getattr(compiled, part).text for part in PARTS),
                     *(f"{name}={value}" for name, value in sorted(env.constants.items())))
        with self.cache.locked(slot):
            codes = load_code(self.cache.load(slot, key), len(PARTS))
            if codes is None:
                codes = self._compile_parts(compiled, env)
                self.cache.store(slot, key, dump_code(codes))
        return codes

    def _compile_parts(self, compiled: Compiled, env: EmailEnvironment) -> list[CodeType]:
        """The four parts compiled in a locale's environment, from trees parsed once for every locale."""
        codes = []
        for part in PARTS:
            source, name = getattr(compiled, part), _template_name(compiled, part)
            known = self._trees.get((compiled.notice, part))
            with _syntax_errors(source, name):
                if known is None or known[0] is not source:
                    tree = self.environment.parse(source.text, name, _filename(name))
                    known = self._trees[(compiled.notice, part)] = (source, tree)
                codes.append(env.compile(env.adopt(known[1]), name, _filename(name)))
        return codes

    def _environment(self, choice: LocaleChoice) -> tuple[EmailEnvironment, str]:
        """This locale's environment over its current catalog, and the catalog's hash."""
        translations, catalog = self.catalogs.current(choice.locale)
        key = (choice.locale, choice.format_locale)
        cached = self._envs.get(key)
        if cached is None or cached[0] is not translations:
            start, end = ("right", "left") if choice.dir == "rtl" else ("left", "right")
            constants = {"locale": choice.locale, "lang": choice.lang, "dir": choice.dir,
                         "start": start, "end": end}
            formats = Formats(choice.format_locale, latin_digits=self.latin_digits)
            env = EmailEnvironment(translations, formats, constants, Bounds(self.max_output or DEFAULT_BOUND))
            cached = self._envs[key] = (translations, env, catalog)
        return cached[1], cached[2]


class _TooLarge(Exception):
    """A part of an email passed the renderer's max_output."""


def _run(template: Template, variables: dict[str, Any], max_output: int | None) -> tuple[list[str], str]:
    """template.render(variables) as its outputs and their text, sharing one dict of globals and variables
    across an email's four parts."""
    # render() copies both dicts for every part; new_context's layers of calls end here
    context = template.environment.context_class(template.environment, variables, template.name, template.blocks)
    deadline, limit = RENDER_DEADLINE.get(), max_output or sys.maxsize
    stream, outputs, texts, size = template.root_render_func(context), [], [], 0
    try:
        # Taken a few outputs at a time, in C: a loop that writes is still stopped within a batch. Each batch
        # joined at once: its length is the size (a sum of the outputs' lengths costs more than the join).
        while batch := list(islice(stream, _BATCH)):
            outputs += batch
            texts.append(text := "".join(batch))
            size += len(text)
            if size > limit:
                raise _TooLarge
            if time.monotonic() > deadline:
                raise RenderTimeout
        return outputs, "".join(texts)
    except (RenderTimeout, _TooLarge):
        raise
    except Exception:
        template.environment.handle_exception()   # raises, with the traceback at template lines
        raise


def _constants(code: CodeType) -> Iterator[str]:
    """The strings in compiled template code and the code nested in it (its functions): its constant text."""
    for constant in code.co_consts:
        if type(constant) is str:
            yield constant
        elif isinstance(constant, CodeType):
            yield from _constants(constant)


def _with_locale(exc: TemplateError, locale: str) -> TemplateError:
    if exc.locale is None:
        exc.locale = exc.context["locale"] = locale
    return exc


def tidy_text(text: str) -> str:
    """Trailing spaces dropped (but the `-- ` signature separator kept), at most one blank line in a row."""
    # Line by line (a regex tries a match at every space), and only when a line other than the signature
    # separator ends in a blank.
    if ("\t" in text and "\t\n" in text) or "\n--\n" in text or _spaced_lines(text):
        text = "\n".join([line.rstrip(" \t") for line in text.split("\n")]).replace("\n--\n", "\n-- \n")
    while "\n\n\n" in text:   # str.replace: a regex is slow on non-ASCII text
        text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n").rstrip() + "\n"


def _spaced_lines(text: str) -> bool:
    r"""Whether more lines end in a space than the signature separators `\n-- \n` account for."""
    # Most texts have one such line, the separator near their end: found from the end, the text read once.
    last = text.rfind(" \n")
    if last == -1:
        return False
    if text.rfind(" \n", 0, last) == -1:
        return text[max(last - 3, 0):last] != "\n--"
    return text.count(" \n") != text.count("\n-- \n")


def _template_name(compiled: Compiled, part: str) -> str:
    """`x.mjml` (autoescaped HTML), `x.txt`, `x.subject`, `x.preheader` (plain text)."""
    return {"html": f"{compiled.notice}.mjml", "text": f"{compiled.notice}.txt"}.get(part, f"{compiled.notice}.{part}")


def _filename(name: str) -> str:
    return f"<{name}, compiled>"


@contextmanager
def _syntax_errors(source: Source, name: str) -> Iterator[None]:
    """Jinja syntax errors raised inside, as TemplateErrors at the template line they come from."""
    try:
        yield
    except TemplateSyntaxError as exc:
        template, line = source.origin(exc.lineno or 0) or (name, exc.lineno)
        raise TemplateError(f"{template} line {line}: {exc.message}", template=template, line=line) from None


def _signature(paths: tuple[str, ...]) -> tuple[tuple[int, int] | None, ...]:
    stamps: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            stat = os.stat(path)
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def _render_error(exc: Exception, compiled: Compiled, locale: str) -> TemplateError:
    """A render failure as a TemplateError at the template line it comes from."""
    sources = {_filename(_template_name(compiled, part)): getattr(compiled, part) for part in PARTS}
    template, line = f"{compiled.notice}.mjml", None
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        origin = sources[frame.filename].origin(frame.lineno or 0) if frame.filename in sources else None
        if origin:
            template, line = origin
            break
    detail = str(exc) if isinstance(exc, JinjaError) else f"{type(exc).__name__}: {exc}"
    where = f"{template} line {line}" if line else template
    if isinstance(exc, ValueTooLarge):   # the same in every locale: said once
        # Jinja's rewritten traceback keeps the template's frames, and the values they built, in a reference
        # cycle: freed now rather than at the next full collection, so that refusals in a row add no memory.
        exc.__traceback__ = None
        gc.collect()
        return EmailTooLarge(f"{compiled.notice}: {where}: {detail}", template=template, line=line, locale=locale)
    return TemplateError(f"cannot render {compiled.notice} in {locale}: {where}: {detail}",
                         template=template, line=line, locale=locale)
