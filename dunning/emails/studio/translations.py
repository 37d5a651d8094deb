"""Each locale's translation status (translated, fuzzy, missing) and where its untranslated strings are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog

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


def translation_status(locales_dir: Path) -> list[LocaleStatus]:
    """The status of every catalog under locales_dir, against messages.pot when there is one."""
    pot = locales_dir / workflow.POT_NAME
    template: Catalog | None = None
    if pot.exists():
        try:
            template = workflow.read_catalog(pot)
        except DunningError:
            template = None   # the linter reports a broken template catalog; counts go on without it
    return [_status(locale, path, template, pot) for locale, path in workflow.catalog_paths(locales_dir).items()]


def _status(locale: str, path: Path, template: Catalog | None, pot: Path) -> LocaleStatus:
    try:
        catalog = workflow.read_catalog(path, locale)
    except DunningError as exc:
        return LocaleStatus(locale, error=exc.message)
    stats = workflow.coverage(catalog, template, locale)
    untranslated = [Untranslated(_text(m.id), bool(m.fuzzy), path, m.lineno) for m in catalog
                    if m.id and (m.fuzzy or not workflow.is_translated(m))]
    if template is not None:
        untranslated += [Untranslated(_text(m.id), False, pot, m.lineno) for m in template
                         if m.id and catalog.get(m.id, m.context) is None]
    return LocaleStatus(locale, stats.translated, stats.fuzzy, stats.missing, tuple(untranslated))


def _text(msgid: object) -> str:
    return msgid[0] if isinstance(msgid, (list, tuple)) else str(msgid)
