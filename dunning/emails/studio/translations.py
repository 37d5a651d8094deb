"""Each locale's translation status (translated, fuzzy, missing) and where its untranslated strings are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog, Message

from dunning.emails.lint_tree import SOURCE_LANGUAGE
from dunning.errors import DunningError
from dunning.i18n import workflow

__all__ = ["Untranslated", "LocaleStatus", "translation_status"]


@dataclass(frozen=True, slots=True)
class Untranslated:
    """A message a locale lacks: its English text, whether it is fuzzy, and the file and line to fix."""

    msgid: str
    fuzzy: bool
    path: Path
    line: int | None


@dataclass(frozen=True, slots=True)
class LocaleStatus:
    """One locale's counts and its untranslated messages; error when its catalog cannot be read."""

    locale: str
    translated: int = 0
    fuzzy: int = 0
    missing: int = 0
    untranslated: tuple[Untranslated, ...] = ()
    error: str | None = None


def translation_status(locales_dir: Path, templates_dir: Path) -> list[LocaleStatus]:
    """The status of every catalog under locales_dir against the strings the templates use now, as `dunning lint`
    counts them: a string added to a template is missing before anyone runs `dunning i18n extract`."""
    template: Catalog | None = None
    try:
        template = workflow.extract(templates_dir)
    except DunningError:
        template = None   # the linter reports a template that does not parse; counts go on without it
    return [_status(locale, path, template) for locale, path in workflow.catalog_paths(locales_dir).items()]


def _status(locale: str, path: Path, template: Catalog | None) -> LocaleStatus:
    try:
        catalog = workflow.read_catalog(path, locale)
    except DunningError as exc:
        return LocaleStatus(locale, error=exc.message)
    source = locale.split("_")[0] == SOURCE_LANGUAGE   # msgids are its text: lint asks nothing of its catalog
    stats = workflow.coverage(catalog, None if source else template, locale)
    untranslated = [Untranslated(_text(m.id), bool(m.fuzzy), path, m.lineno) for m in catalog
                    if m.id and (m.fuzzy or not (source or workflow.is_translated(m)))]
    if template is not None and not source:
        untranslated += [Untranslated(_text(m.id), False, *_used_at(m)) for m in template
                         if m.id and catalog.get(m.id, m.context) is None]
    missing = 0 if source else stats.missing
    return LocaleStatus(locale, stats.translated + (stats.missing if source else 0), stats.fuzzy, missing,
                        tuple(untranslated))


def _used_at(message: Message) -> tuple[Path, int | None]:
    """Where a template uses the message (the extraction names it relative to the current folder)."""
    where, line = message.locations[0] if message.locations else ("", None)
    return Path(where).resolve(), line


def _text(msgid: object) -> str:
    return msgid[0] if isinstance(msgid, (list, tuple)) else str(msgid)
