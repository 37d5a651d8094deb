"""The gettext workflow over Babel's API: extract, update, compile and coverage statistics."""

from __future__ import annotations

import gettext
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po, write_po
from jinja2 import TemplateSyntaxError

from dunning.errors import TemplateError
from dunning.i18n.po_syntax import refuse_malformed
from dunning.version import __version__

__all__ = ["DOMAIN", "POT_NAME", "PACKAGE_DIR", "COMMENT_TAGS", "TEMPLATE_SUFFIXES", "TEMPLATE_PATTERNS",
           "JINJA_OPTIONS", "NUMBER_PLACEHOLDERS", "display_path", "placeholders", "forms", "is_translated",
           "single_number_forms", "placeholder_problems", "describe", "catalog_paths", "read_catalog", "extract",
           "write_pot", "read_pot", "UpdateResult", "update", "translation_errors", "compile_catalogs", "LocaleStats",
           "coverage", "stats", "format_stats"]

DOMAIN = "messages"
POT_NAME = f"{DOMAIN}.pot"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the dunning package: its Python strings
COMMENT_TAGS = ("Translators:",)
TEMPLATE_SUFFIXES = (".mjml", ".html", ".txt", ".j2", ".jinja")
TEMPLATE_PATTERNS = tuple(f"**{suffix}" for suffix in TEMPLATE_SUFFIXES)
# As the email environment parses templates (dunning.emails.jinja_env); silent=false, or Jinja's extractor
# skips a template with a syntax error and reports nothing.
JINJA_OPTIONS: dict[str, Any] = {"silent": "false", "trimmed": "true", "newstyle_gettext": "true",
                                 "lstrip_blocks": "true"}

NUMBER_PLACEHOLDERS = frozenset({"%(count)s", "%(num)s"})
_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)[#0 +\-]*\d*(?:\.\d+)?[a-zA-Z]|(?<!\{)\{(\w+)\}(?!\})")


def display_path(path: Path) -> str:
    """The path relative to the current directory when it lies below it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def placeholders(text: str) -> set[str]:
    """Named placeholders in a message: `%(name)s` and `{name}` (a literal `%%` is none)."""
    found: set[str] = set()
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1):
            found.add(f"%({match.group(1)})s")
        elif match.group(2):
            found.add(f"{{{match.group(2)}}}")
    return found


def forms(message: Message) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(msgids, msgstrs) of a message as tuples, plural or not."""
    ids = message.id if isinstance(message.id, (list, tuple)) else (message.id,)
    strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
    return tuple(ids), tuple(s or "" for s in strings)


def is_translated(message: Message) -> bool:
    """Every form of the message has a translation."""
    return all(forms(message)[1])


def single_number_forms(catalog: Catalog) -> frozenset[int]:
    """Plural forms that the catalog's formula picks for one number only (Arabic: 0, 1 and 2)."""
    try:
        choose = gettext.c2py(catalog.plural_expr)
    except (ValueError, SyntaxError):
        return frozenset()
    counts = Counter(choose(n) for n in range(1000))
    return frozenset(form for form, times in counts.items() if times == 1)


def placeholder_problems(message: Message, single_forms: frozenset[int] = frozenset()) -> list[str]:
    """How each translated form drops or adds a placeholder of its msgid (plural: of either msgid).

    As GNU msgfmt allows, a plural form used for one number only may leave the number out
    (`يوم واحد`, "one day"): %(count)s or %(num)s, the names Jinja gives it.
    """
    ids, strings = forms(message)
    expected = set().union(*(placeholders(text) for text in ids))
    problems = []
    for index, string in enumerate(strings):
        if not string:
            continue
        got = placeholders(string)
        where = f"msgstr[{index}]" if len(ids) > 1 else "msgstr"
        dropped = expected - got - (NUMBER_PLACEHOLDERS if index in single_forms and len(ids) > 1 else set())
        if dropped:
            problems.append(f"{where} drops {', '.join(sorted(dropped))}")
        if got - expected:
            problems.append(f"{where} adds {', '.join(sorted(got - expected))}")
    return problems


def describe(message: Message) -> str:
    """A short, quoted msgid for error messages."""
    text = forms(message)[0][0]
    return repr(text if len(text) <= 60 else text[:57] + "...")


# -- reading and writing catalogs ---------------------------------------------------------------

def catalog_paths(locales_dir: Path) -> dict[str, Path]:
    """Each shipped locale's messages.po, by locale id, in name order."""
    found = sorted(locales_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return {path.parent.parent.name: path for path in found}


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    """Parse a .po/.pot file; a malformed one (as `msgfmt --check` sees it) raises TemplateError at its line."""
    try:
        data = path.read_bytes()
        refuse_malformed(display_path(path), data, str(path), locale)
        return read_po(BytesIO(data), locale=locale, domain=DOMAIN, abort_invalid=True)
    except TemplateError:
        raise
    except PoFileError as exc:
        reason = str(exc).removesuffix(f" on {exc.lineno}")  # Babel counts lines from 0
        raise TemplateError(f"{display_path(path)}:{exc.lineno + 1}: {reason}: {exc.line.strip()!r}",
                            template=str(path), line=exc.lineno + 1, locale=locale) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{display_path(path)}: cannot read catalog: {exc}", template=str(path),
                            locale=locale) from None


def _write(path: Path, catalog: Catalog, writer: Any, **options: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        writer(handle, catalog, **options)
    tmp.replace(path)
    return path


# -- extract ------------------------------------------------------------------------------------

def extract(templates_dir: Path, package_dir: Path = PACKAGE_DIR, *, root: Path | None = None,
            project: str = "dunning") -> Catalog:
    """Messages of every template (Jinja) and of the package's code; a template syntax error raises.

    Template references are relative to `root` (the project's folder; default: the current one), code
    references to the package's parent, so they read the same wherever the command runs.
    """
    catalog = Catalog(project=project, version=__version__, domain=DOMAIN, fuzzy=False,
                      copyright_holder=f"{project} contributors",
                      creation_date=datetime.now(UTC))
    sources = [(templates_dir, _relative(templates_dir, root or Path.cwd()),
                [(pattern, "jinja2.ext:babel_extract") for pattern in TEMPLATE_PATTERNS],
                dict.fromkeys(TEMPLATE_PATTERNS, JINJA_OPTIONS)),
               (package_dir, package_dir.name, [("**.py", "python")], {})]
    for directory, shown, method_map, options_map in sources:
        for filename, lineno, message, comments, context in _extract_dir(directory, method_map,
                                                                          options_map):
            location = (f"{shown}/{filename}", lineno)
            catalog.add(message, None, [location], auto_comments=comments, context=context)
    return catalog


def _relative(path: Path, root: Path) -> str:
    """path relative to root (with ../ when it lies outside), in POSIX form."""
    return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()


def _extract_dir(directory: Path, method_map: list[tuple[str, str]],
                 options_map: Mapping[str, dict[str, Any]]) -> Iterable[tuple[Any, ...]]:
    current: list[str] = []
    try:
        yield from extract_from_dir(directory, method_map, options_map, comment_tags=COMMENT_TAGS,
                                    strip_comment_tags=True,
                                    callback=lambda name, method, options: current.append(name))
    except TemplateSyntaxError as exc:
        name = display_path(directory / current[-1]) if current else display_path(directory)
        raise TemplateError(f"{name}:{exc.lineno}: template syntax error: {exc.message}",
                            template=name, line=exc.lineno) from None


def write_pot(catalog: Catalog, locales_dir: Path) -> Path:
    """Write locales/messages.pot, unless it holds these very messages already (no date churn)."""
    path = locales_dir / POT_NAME
    if path.exists() and fingerprint(read_catalog(path)) == fingerprint(catalog):
        return path
    return _write(path, catalog, write_po)


def fingerprint(catalog: Catalog) -> list[tuple[object, ...]]:
    """Everything a catalog says about its messages, less its dates: equal fingerprints, nothing to write."""
    # Comments are compared as text: the file wraps them at its width.
    return [(m.id, m.context, m.string or "", tuple(sorted(m.locations)), " ".join(m.auto_comments),
             " ".join(m.user_comments), tuple(sorted(m.flags)), tuple(m.previous_id))
            for m in [*catalog, *catalog.obsolete.values()] if m.id]


def read_pot(locales_dir: Path) -> Catalog:
    """The extracted template catalog; missing means extraction has not run yet."""
    path = locales_dir / POT_NAME
    if not path.exists():
        raise TemplateError(f"{display_path(path)} does not exist: run `dunning i18n extract` first",
                            template=str(path))
    return read_catalog(path)


# -- update -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class UpdateResult:
    locale: str
    path: Path
    added: int
    fuzzy: int
    obsolete: int


def update(locales_dir: Path, template: Catalog) -> list[UpdateResult]:
    """Merge the template into each locale's catalog: translations kept, near matches marked fuzzy."""
    results = []
    for locale, path in catalog_paths(locales_dir).items():
        catalog = read_catalog(path, locale)
        before = {message.id for message in catalog if message.id}
        was_fuzzy = {message.id for message in catalog if message.id and message.fuzzy}
        unchanged = (catalog.creation_date, fingerprint(catalog))
        catalog.update(template, update_header_comment=False)
        added = sum(1 for m in catalog if m.id and m.id not in before and not m.fuzzy)
        fuzzy = sum(1 for m in catalog if m.id and m.fuzzy and m.id not in was_fuzzy)
        if (catalog.creation_date, fingerprint(catalog)) != unchanged:
            _write(path, catalog, write_po)
        results.append(UpdateResult(locale, path, added, fuzzy, len(catalog.obsolete)))
    return results


# -- compile ------------------------------------------------------------------------------------

def translation_errors(path: Path, catalog: Catalog) -> list[str]:
    """`file:line: msgid: problem` for each translation whose placeholders differ from its msgid."""
    errors, single_forms = [], single_number_forms(catalog)
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        for problem in placeholder_problems(message, single_forms):
            errors.append(f"{display_path(path)}:{message.lineno}: {describe(message)}: {problem}")
    return errors


def compile_catalogs(locales_dir: Path) -> list[Path]:
    """Write each locale's messages.mo; refuses them all when a translation breaks a placeholder."""
    catalogs = {locale: (path, read_catalog(path, locale))
                for locale, path in catalog_paths(locales_dir).items()}
    errors = {locale: translation_errors(path, catalog) for locale, (path, catalog) in catalogs.items()}
    if any(errors.values()):
        locale = next(locale for locale, found in errors.items() if found)
        listed = [error for found in errors.values() for error in found]
        raise TemplateError("translations break placeholders, nothing compiled:\n  " + "\n  ".join(listed),
                            template=str(catalogs[locale][0]), locale=locale)
    return [_write(path.with_suffix(".mo"), catalog, write_mo) for path, catalog in catalogs.values()]


# -- stats --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LocaleStats:
    locale: str
    translated: int
    fuzzy: int
    missing: int

    @property
    def total(self) -> int:
        return self.translated + self.fuzzy + self.missing

    @property
    def percent(self) -> float:
        return 100.0 * self.translated / self.total if self.total else 100.0


def coverage(catalog: Catalog, template: Catalog | None = None, locale: str = "") -> LocaleStats:
    """Translated, fuzzy and missing counts; messages of the template absent from the catalog are missing."""
    translated = fuzzy = missing = 0
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            fuzzy += 1
        elif is_translated(message):
            translated += 1
        else:
            missing += 1
    if template is not None:
        missing += sum(1 for m in template if m.id and catalog.get(m.id, m.context) is None)
    return LocaleStats(locale or str(catalog.locale), translated, fuzzy, missing)


def stats(locales_dir: Path) -> list[LocaleStats]:
    """Coverage of every shipped locale, against messages.pot when it exists."""
    pot = locales_dir / POT_NAME
    template = read_catalog(pot) if pot.exists() else None
    return [coverage(read_catalog(path, locale), template, locale)
            for locale, path in catalog_paths(locales_dir).items()]


def format_stats(rows: Iterable[LocaleStats]) -> str:
    """A plain-text table: locale, translated, fuzzy, missing, total, percentage."""
    header = ("locale", "translated", "fuzzy", "missing", "total", "coverage")
    lines = [header] + [(r.locale, str(r.translated), str(r.fuzzy), str(r.missing), str(r.total),
                         f"{r.percent:.1f}%") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    def fmt(line: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()
    return "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths)] + [fmt(row) for row in lines[1:]])
