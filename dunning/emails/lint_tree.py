"""Lint a whole tree: every template, catalog and rendered email, as problems at file and line."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from babel.messages.catalog import Catalog
from jinja2 import Environment
from jinja2.sandbox import SandboxedEnvironment

from dunning.emails import lint
from dunning.emails.limits import DEFAULT_LIMITS, RenderLimits, SlowNotices
from dunning.emails.lint import Problem
from dunning.emails.lint_text import check_bare_text, check_structure, text_link_problems
from dunning.errors import DunningError
from dunning.i18n import style, workflow
from dunning.i18n.workflow import display_path

if TYPE_CHECKING:
    from dunning.emails.render import RenderedEmail, Renderer

__all__ = ["lint_tree", "template_files"]

SOURCE_LANGUAGE = "en"   # msgids are English: an English catalog need not repeat them


def lint_tree(templates_dir: Path, locales_dir: Path, *, default_locale: str = "en",
              render: bool = True, limits: RenderLimits = DEFAULT_LIMITS) -> list[Problem]:
    """Every problem of the templates, the catalogs and (unless render=False) the rendered emails, each
    rendered within limits (the Renderer's defaults unless given)."""
    problems = _guard(templates_dir, lambda: _lint_templates(templates_dir))
    template = None
    try:
        template = workflow.extract(templates_dir)
    except DunningError as exc:
        problems += _from_error(exc, templates_dir, base_dir=templates_dir)
    problems += _guard(locales_dir, lambda: _lint_catalogs(locales_dir, template))
    if render:
        problems += _unexplained(problems, _guard(templates_dir, lambda: _lint_rendering(
            templates_dir, locales_dir, default_locale, limits)))
    return _unique(problems)


def _guard(where: Path, check: Callable[[], list[Problem]]) -> list[Problem]:
    """Run a group of checks; an unexpected failure becomes a problem, never a crash."""
    try:
        return check()
    except Exception as exc:  # the linter reports and goes on with the rest
        return [Problem(display_path(where), None, f"check failed: {type(exc).__name__}: {exc}")]


def _unexplained(reported: list[Problem], found: list[Problem]) -> list[Problem]:
    """Rendering problems, less those a static check already reported (same line, or same file
    when the renderer could not tell the line)."""
    lines = {(p.file, p.line) for p in reported}
    files = {p.file for p in reported if p.severity == "error"}
    return [p for p in found if (p.file, p.line) not in lines and not (p.line is None and p.file in files)]


def _from_error(exc: DunningError, fallback: Path, label: str = "", *,
                base_dir: Path | None = None) -> list[Problem]:
    """A DunningError as a problem at the template (or catalog) and line it names."""
    template, line, text = exc.context.get("template"), exc.context.get("line"), exc.message
    path = fallback
    if template:
        path = Path(str(template))
        if not path.is_absolute() and not path.exists() and base_dir is not None:
            path = base_dir / path
        if not path.exists():  # a notice's name, not a file: the error is about the file given
            path = fallback
        for prefix in (f"{display_path(path)}:{line}: ", f"{template}:{line}: ", f"{template} line {line}: ",
                       f"{path}: ", f"{display_path(path)}: "):
            text = text.removeprefix(prefix)
    return [Problem(display_path(path), line if isinstance(line, int) else None, f"{label}{text}")]


# -- templates ----------------------------------------------------------------------------------

def template_files(templates_dir: Path) -> list[Path]:
    """Every template file below the directory (sample scenarios excluded)."""
    return sorted(path for path in templates_dir.rglob("*")
                  if path.is_file() and path.suffix in workflow.TEMPLATE_SUFFIXES)


def _syntax_environment() -> Environment:
    """The environment emails are rendered with (its extensions and options), without a catalog."""
    try:
        from dunning.emails.jinja_env import EmailEnvironment
        return EmailEnvironment()
    except Exception:  # the renderer itself is broken: its errors are reported by the render checks
        return SandboxedEnvironment(extensions=["jinja2.ext.i18n"], lstrip_blocks=True)


def _lint_templates(templates_dir: Path) -> list[Problem]:
    environment = _syntax_environment()
    problems: list[Problem] = []
    mjml: dict[str, tuple[str, str]] = {}
    for path in template_files(templates_dir):
        shown = display_path(path)
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(shown, None, f"cannot read template: {exc}"))
            continue
        problems += lint.check_jinja_syntax(shown, source, environment) + check_bare_text(shown, source)
        if path.suffix == ".mjml":
            mjml[path.relative_to(templates_dir).as_posix()] = (shown, source)
    return problems + lint.check_mjml_templates(mjml)


# -- catalogs -----------------------------------------------------------------------------------

def _lint_catalogs(locales_dir: Path, template: Catalog | None) -> list[Problem]:
    paths = workflow.catalog_paths(locales_dir)
    if not paths:
        return [Problem(display_path(locales_dir), None, "no catalogs (<locale>/LC_MESSAGES/messages.po)")]
    problems: list[Problem] = []
    for locale, path in paths.items():
        name = display_path(path)
        try:
            catalog = workflow.read_catalog(path, locale)
        except DunningError as exc:
            problems += _from_error(exc, path)
            continue
        source_language = locale.split("_")[0] == SOURCE_LANGUAGE
        problems += lint.check_catalog(name, catalog, require_translations=not source_language)
        problems += _style_problems(name, catalog, locale)
        if template is not None and not source_language:
            problems += lint.check_catalog_coverage(name, catalog, template)
    return problems


def _style_problems(name: str, catalog: Catalog, locale: str) -> list[Problem]:
    """Translations a native copy editor would correct (dunning.i18n.style)."""
    return [Problem(name, message.lineno, f"{workflow.describe(message)}: {finding}")
            for message in catalog if message.id and not message.fuzzy
            for text in workflow.forms(message)[1] for finding in style.catalog_findings(locale, text)]


# -- rendered emails ----------------------------------------------------------------------------

def _lint_rendering(templates_dir: Path, locales_dir: Path, default_locale: str,
                    limits: RenderLimits) -> list[Problem]:
    from dunning.emails.scenarios import load_scenarios
    from dunning.vocabulary import NOTICES

    try:
        renderer = limits.renderer(templates_dir, locales_dir, default_locale)
        scenarios = load_scenarios(templates_dir)
    except DunningError as exc:
        return _from_error(exc, templates_dir, base_dir=templates_dir)
    problems, compiled = _compile_notices(renderer, templates_dir, NOTICES)
    problems += [Problem(display_path(templates_dir / "scenarios"), None, f"no sample scenario for {notice}",
                         "warning") for notice in NOTICES if not any(s.notice == notice for s in scenarios)]
    sources = [*template_files(templates_dir), *workflow.catalog_paths(locales_dir).values(),
               *sorted((templates_dir / "scenarios").glob("*.json"))]
    locales = _readable_locales(locales_dir, renderer.available_locales)
    slow = SlowNotices(renderer)
    for scenario in (s for s in scenarios if s.notice in compiled):
        notice_file = _notice_file(templates_dir, scenario.notice)
        for locale in locales:
            label = f"[{locale}, scenario {scenario.name}] "
            if scenario.notice in slow.stopped:  # reported once: each of its emails would take as long
                continue
            try:
                email = slow.render(scenario.notice, locale, scenario.context)
            except DunningError as exc:
                problems += _from_error(exc, notice_file, label, base_dir=templates_dir)
                continue
            except Exception as exc:  # a crash in one email must not hide the others
                problems.append(Problem(display_path(notice_file), None,
                                        f"{label}rendering crashed: {type(exc).__name__}: {exc}"))
                continue
            problems += _email_problems(email, notice_file, [notice_file, *sources], label)
    return problems


def _readable_locales(locales_dir: Path, available: Iterable[str]) -> list[str]:
    """Locales whose catalog parses (a broken one is reported by the catalog checks, once)."""
    readable = []
    for locale in sorted(available):
        try:
            workflow.read_catalog(workflow.catalog_paths(locales_dir)[locale], locale)
        except (DunningError, KeyError):
            continue
        readable.append(locale)
    return readable


def _compile_notices(renderer: Renderer, templates_dir: Path, notices: Iterable[str]) -> tuple[list[Problem], set[str]]:
    """Compile every notice once (MJML included); the ones that compile are rendered afterwards."""
    problems: list[Problem] = []
    compiled: set[str] = set()
    for notice in notices:
        notice_file = _notice_file(templates_dir, notice)
        try:
            renderer.compile(notice)
            compiled.add(notice)
        except DunningError as exc:
            problems += _from_error(exc, notice_file, base_dir=templates_dir)
        except Exception as exc:
            problems.append(Problem(display_path(notice_file), None,
                                    f"cannot compile: {type(exc).__name__}: {exc}"))
    return problems, compiled


def _notice_file(templates_dir: Path, notice: str) -> Path:
    return templates_dir / f"{notice}.mjml"


def _email_problems(email: RenderedEmail, notice_file: Path, sources: list[Path], label: str) -> list[Problem]:
    problems = [Problem(display_path(notice_file), None, f"{label}empty {part}")
                for part in ("subject", "html", "text") if not getattr(email, part).strip()]
    problems += [Problem(display_path(notice_file), None, label + text)
                 for text in text_link_problems(email.text) + style.text_findings(email.lang, email.text)]
    for finding in lint.check_html(email.html) + check_structure(email.html):
        path, line = _locate(finding.needle, sources) if finding.needle else (notice_file, None)
        problems.append(Problem(display_path(path), line, label + finding.message, finding.severity))
    return problems


def _locate(needle: str, sources: list[Path]) -> tuple[Path, int | None]:
    """The first source file and line that holds the text (where a rendered value came from)."""
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        index = text.find(needle)
        if index >= 0:
            return path, text.count("\n", 0, index) + 1
    return sources[0], None


def _unique(problems: list[Problem]) -> list[Problem]:
    """Problems in file and line order; one problem repeated across emails is listed once with all labels."""
    labels: dict[tuple[str, int | None, str, Literal["error", "warning"]], list[str]] = defaultdict(list)
    for problem in problems:
        label, sep, text = problem.message.partition("] ")
        if problem.message.startswith("[") and sep:
            labels[(problem.file, problem.line, text, problem.severity)].append(label[1:])
        else:
            labels[(problem.file, problem.line, problem.message, problem.severity)]
    merged = []
    for (file, line, text, severity), where in labels.items():
        shown = where[:3] + ([f"{len(where) - 3} more"] if len(where) > 3 else [])
        message = f"{text} [{'; '.join(shown)}]" if where else text
        merged.append(Problem(file, line, message, severity))
    return sorted(merged, key=lambda p: (p.file, p.line or 0, p.message))
