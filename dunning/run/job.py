"""The job, as one line: billing state → plan → ledger → claim → render → MIME → SMTP → ledger."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path

from dunning import ledger, links, store
from dunning.delivery.timer import Timers
from dunning.delivery.transport import check_settings, tls_context
from dunning.emails.limits import RenderLimits, refuse_over_limits
from dunning.emails.render import Renderer
from dunning.links import LinkSigner
from dunning.run.clock import SYSTEM_CLOCK, Clock
from dunning.run.collector import fewer_collections
from dunning.run.context import RunContext, dkim_signer, quiet, smtp_transport
from dunning.run.deliver import deliver, run_loop
from dunning.run.enqueue import enqueue_plan
from dunning.run.flight import expire_lapsed
from dunning.run.stages import OFF, Stages, add, stage_clock
from dunning.run.summary import Progress, RunSummary
from dunning.run.workers import DeliveryWorkers
from dunning.settings import Settings
from dunning.vocabulary import NOTICES

__all__ = ["run", "open_run", "make_renderer", "preflight"]

def run(settings: Settings, *, as_of: datetime, dry_run: bool = False, progress: Progress = quiet,
        clock: Clock = SYSTEM_CLOCK, deliver_too: bool = True, profile: bool = False,
        timers: Timers | None = None) -> RunSummary:
    """Plan and enqueue while helper processes deliver, then deliver with them until the queue is empty
    (with deliver_too False: plan and enqueue only, for `dunning deliver` processes to send). A dry run
    records, sends and signs nothing, so it needs no signing key. profile: count the CPU of each stage
    into the summary's stages (run/stages). timers: the clock of the SMTP reply timeouts (the event loop's
    unless given)."""
    stages = stage_clock(profile)
    context = open_run(settings, signs=not dry_run, sends=deliver_too and not dry_run, progress=progress,
                       clock=clock, stages=stages, timers=timers)
    summary = RunSummary()
    try:
        _run(context, as_of, summary, dry_run=dry_run, deliver_too=deliver_too)
    finally:
        stages.lap("other")
        add(summary.stages, stages.seconds())
    return summary


def _run(context: RunContext, as_of: datetime, summary: RunSummary, *, dry_run: bool, deliver_too: bool) -> None:
    settings, clock = context.settings, context.clock
    with fewer_collections():
        if dry_run:
            enqueue_plan(context, as_of, summary, dry_run=True)
            return
        summary.expired += expire_lapsed(context.engine, settings.delivery, now=clock.now())
        if not deliver_too:
            enqueue_plan(context, as_of, summary)
            summary.queue_state(ledger.queue_state(context.engine, now=clock.now()))
            return
        with DeliveryWorkers(context, settings.delivery.workers - 1) as helpers:
            enqueue_plan(context, as_of, summary)
            helpers.planning_done()
            context.stages.lap("other")
            run_loop(deliver(context, summary))
            for counts in helpers.results():
                summary.add(counts)
        summary.queue_state(ledger.queue_state(context.engine, now=clock.now()))


def open_run(settings: Settings, *, signs: bool = True, sends: bool = True, progress: Progress = quiet,
             clock: Clock = SYSTEM_CLOCK, stages: Stages = OFF, timers: Timers | None = None) -> RunContext:
    """preflight, then the store opened (migrated if needed): the context every step of the run is given."""
    renderer = preflight(settings, signs=signs, sends=sends)
    return RunContext(settings, store.connect(settings.database.url), renderer, clock, progress,
                      partial(smtp_transport, timers=timers),
                      links=LinkSigner(settings.links) if signs else None,
                      dkim=dkim_signer(settings.dkim) if sends else None, stages=stages)


def preflight(settings: Settings, *, signs: bool = True, sends: bool = True) -> Renderer:
    """Every check that can refuse a run, before it writes anything: the signing key (when it signs
    links), the SMTP and TLS settings (when it sends), every template compiled, and its sample scenarios
    rendered within the limits; the renderer, ready."""
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
    refuse_over_limits(renderer, Path(settings.i18n.templates_dir), settings.i18n.default_locale)
    return renderer


def make_renderer(settings: Settings) -> Renderer:
    """The renderer over the configured templates and catalogs."""
    return RenderLimits.of(settings).renderer(Path(settings.i18n.templates_dir), Path(settings.i18n.locales_dir),
                                              settings.i18n.default_locale)
