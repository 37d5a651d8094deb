"""Locale negotiation: the account's locale, else its language, else the default locale."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError

__all__ = ["normalize", "fallback_chain", "written_locale", "negotiate"]


@lru_cache(maxsize=4096)
def normalize(tag: str) -> str | None:
    """A BCP 47 tag (`pt-BR`, `sv_SE`) in Babel's form (`pt_BR`), or None when it is not a locale."""
    try:
        return str(Locale.parse(tag.replace("-", "_")))
    except (ValueError, TypeError, UnknownLocaleError):
        return None


@lru_cache(maxsize=4096)
def fallback_chain(tag: str, default: str) -> tuple[str, ...]:
    """Candidates in order: `pt-BR` → [`pt_BR`, `pt`, default]."""
    chain: list[str] = []
    norm = normalize(tag)
    if norm:
        chain.append(norm)
        language = norm.split("_")[0]
        if language not in chain:
            chain.append(language)
    if default not in chain:
        chain.append(default)
    return tuple(chain)


def written_locale(requested: str, catalog: str) -> str | None:
    """The locale an email is written in (Babel form) when its catalog is for the requested language, else None.

    The email keeps the requested tag while the catalog is for its language (fr-FR written from the fr
    catalog is still fr_FR, pt-BR from pt is pt_BR); None means a change of language, a fallback.
    """
    exact = normalize(requested)
    return exact if exact is not None and exact.split("_")[0] == catalog.split("_")[0] else None


def negotiate(tag: str, available: frozenset[str] | set[str], default: str) -> str:
    """The first of the fallback chain that has a catalog; the default when none does."""
    for candidate in fallback_chain(tag, default):
        if candidate in available:
            return candidate
    return default
