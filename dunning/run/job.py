"""The job, as one line: billing state → plan → ledger → claim → render → MIME → SMTP → ledger."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from dunning import ledger, links, store
from dunning.delivery.transport import check_settings, tls_context
from dunning.emails.render import Renderer
from dunning.run.clock import SYSTEM_CLOCK, Clock
from dunning.run.deliver import deliver, run_loop
from dunning.run.enqueue import enqueue_plan
from dunning.run.flight import expire_lapsed
from dunning.run.summary import Progress, RunSummary
from dunning.run.workers import DeliveryWorkers
from dunning.settings import Settings
from dunning.vocabulary import NOTICES

__all__ = ["run", "make_renderer", "preflight"]

COLLECT_EVERY = 20_000  # new container objects between two passes of the cycle collector


def _quiet(what: str, count: int) -> None:
    """A progress callback that reports nothing."""


def run(settings: Settings, *, as_of: datetime, dry_run: bool = False, progress: Progress = _quiet,
        clock: Clock = SYSTEM_CLOCK, deliver_too: bool = True) -> RunSummary:
    """Plan and enqueue while helper processes deliver, then deliver with them until the queue is empty
    (with deliver_too False: plan and enqueue only, for `dunning deliver` processes to send). A dry run
    records, sends and signs nothing, so it needs no signing key."""
    renderer = preflight(settings, signs=not dry_run, sends=deliver_too and not dry_run)
    engine = store.connect(settings.database.url)
    summary = RunSummary()
    with fewer_collections():
        if dry_run:
            enqueue_plan(engine, settings, renderer.available_locales, as_of, summary, progress, clock,
                         dry_run=True)
            return summary
        summary.expired += expire_lapsed(engine, settings.delivery, now=clock.now())
        if not deliver_too:
            enqueue_plan(engine, settings, renderer.available_locales, as_of, summary, progress, clock)
            summary.queue_state(ledger.queue_state(engine, now=clock.now()))
            return summary
        with DeliveryWorkers(settings, settings.delivery.workers - 1, renderer, clock) as helpers:
            enqueue_plan(engine, settings, renderer.available_locales, as_of, summary, progress, clock)
            helpers.planning_done()
            run_loop(deliver(engine, settings, renderer, summary, progress, clock))
            for counts in helpers.results():
                summary.add(counts)
        summary.queue_state(ledger.queue_state(engine, now=clock.now()))
    return summary


def preflight(settings: Settings, *, signs: bool = True, sends: bool = True) -> Renderer:
    """Every check that can refuse a run, before it writes anything: the signing key (when it signs
    links), the SMTP and TLS settings (when it sends), and every template compiled; the renderer, ready."""
    if signs:
        links.require_signing_key(settings.links)
    if sends:
        password = settings.smtp.password.get_secret_value() if settings.smtp.password else None
        check_settings(settings.smtp, password)
        if settings.smtp.tls != "none":
            tls_context(settings.smtp)
    renderer = make_renderer(settings)
    for notice in NOTICES:  # a syntax error shows in any locale: the default's compiled code is used anyway
        renderer.prepare(notice, settings.i18n.default_locale)
    return renderer


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's cycle collector every 20,000 new objects instead of 700, for the duration of a run.

    Nearly everything a notice allocates is freed as soon as it is done with; the default threshold
    still runs a pass every few notices, a noticeable share of a run's CPU. The forked workers inherit
    the setting.
    """
    before = gc.get_threshold()
    gc.set_threshold(COLLECT_EVERY, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def make_renderer(settings: Settings) -> Renderer:
    """The renderer over the configured templates and catalogs."""
    return Renderer(Path(settings.i18n.templates_dir), Path(settings.i18n.locales_dir),
                    default_locale=settings.i18n.default_locale, latin_digits=settings.i18n.latin_digits)
