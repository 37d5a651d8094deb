"""The public API for embedding dunning in other Python code: settings, plan, run, render, verify.

    from dunning import api

    settings = api.load_settings("settings.toml")
    for notice in api.plan(settings, as_of=now):
        ...
    summary = api.run(settings, as_of=now)
    email = api.render_notice(settings, "past_due", "fr-FR", context)
    claims = api.verify_link(token, settings)

Everything else in the package may change between versions; these names keep their meaning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from dunning import links, store
from dunning.emails.render import RenderedEmail
from dunning.links import LinkClaims
from dunning.planning import candidates
from dunning.planning.policy import PlannedNotice
from dunning.run import job
from dunning.run.clock import SYSTEM_CLOCK, Clock
from dunning.run.summary import RunSummary
from dunning.settings import Settings
from dunning.settings import load_settings as _load_settings

__all__ = ["Settings", "PlannedNotice", "RunSummary", "RenderedEmail", "LinkClaims", "Clock",
           "load_settings", "plan", "run", "render_notice", "verify_link"]


def load_settings(path: str | Path | None = None) -> Settings:
    """settings.toml (default: $DUNNING_SETTINGS, else ./settings.toml) with DUNNING_* overrides applied."""
    return _load_settings(Path(path) if path is not None else None)


def plan(settings: Settings, *, as_of: datetime) -> Iterator[PlannedNotice]:
    """Every notice a run at as_of would send, defer, skip or supersede; records and sends nothing."""
    engine = store.connect(settings.database.url)
    locales = job.make_renderer(settings).available_locales
    for batch in candidates.iter_plan(engine, as_of, settings, locales):
        yield from batch


def run(settings: Settings, *, as_of: datetime, dry_run: bool = False, clock: Clock = SYSTEM_CLOCK) -> RunSummary:
    """Plan, enqueue, send and record every notice due at as_of (what `dunning run` does)."""
    return job.run(settings, as_of=as_of, dry_run=dry_run, clock=clock)


def render_notice(settings: Settings, notice: str, locale: str, context: Mapping[str, Any]) -> RenderedEmail:
    """One notice rendered in one locale from a render context (as in templates/emails/scenarios/)."""
    return job.make_renderer(settings).render(notice, locale, dict(context))


def verify_link(token_or_url: str, settings: Settings, *, now: datetime | None = None) -> LinkClaims:
    """The ids a settlement-link token (or its whole URL) was signed for; LinkError says why not."""
    token = links.token_from(token_or_url.strip(), settings.links)
    return links.verify_token(token, links.require_signing_key(settings.links),
                              max_age_days=settings.links.max_age_days, now=now)
