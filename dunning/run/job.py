"""The job, as one line: billing state → plan → ledger → claim → render → MIME → SMTP → ledger."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime
from functools import partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from dunning import ledger, links, store
from dunning.delivery.checks import check_settings, tls_context
from dunning.emails.limits import RenderLimits, refuse_over_limits
from dunning.links import LinkSigner
from dunning.run.clock import SYSTEM_CLOCK, Clock
from dunning.run.collector import fewer_collections
from dunning.run.context import RunContext, dkim_signer, quiet, smtp_transport
from dunning.run.enqueue import count_plan, enqueue_batches, planned_batches
from dunning.run.flight import expire_lapsed
from dunning.run.stages import OFF, Stages, add, stage_clock
from dunning.run.summary import Progress, RunSummary
from dunning.settings import Settings
from dunning.vocabulary import NOTICES

if TYPE_CHECKING:
    from dunning.delivery.timer import Timers
    from dunning.emails.render import Renderer
    from dunning.run.workers import DeliveryWorkers

__all__ = ["run", "open_run", "make_renderer", "preflight", "check_templates"]

def run(settings: Settings, *, as_of: datetime, dry_run: bool = False, progress: Progress = quiet,
        clock: Clock = SYSTEM_CLOCK, deliver_too: bool = True, profile: bool = False,
        timers: Timers | None = None) -> RunSummary:
    """Plan and enqueue while helper processes deliver, then deliver with them until the queue is empty
    (with deliver_too False: plan and enqueue only, for `dunning deliver` processes to send). A dry run
    records, sends and signs nothing, so it needs no signing key. profile: count the CPU of each stage
    into the summary's stages (run/stages). timers: the clock of the SMTP reply timeouts (the event loop's
    unless given). The templates are checked once the run finds candidates or emails to deliver (a dry run
    checks them first): a run with nothing to do reads the store and ends."""
    stages = stage_clock(profile)
    context = open_run(settings, signs=not dry_run, sends=deliver_too and not dry_run, progress=progress,
                       clock=clock, stages=stages, timers=timers, templates=dry_run)
    summary = RunSummary()
    try:
        _run(context, as_of, summary, dry_run=dry_run, deliver_too=deliver_too)
    finally:
        stages.lap("other")
        add(summary.stages, stages.seconds())
    return summary


def _run(context: RunContext, as_of: datetime, summary: RunSummary, *, dry_run: bool, deliver_too: bool) -> None:
    settings, clock, engine = context.settings, context.clock, context.engine
    with fewer_collections(), ExitStack() as held:
        if dry_run:
            count_plan(context, as_of, summary)
            return
        helpers: list[DeliveryWorkers] = []

        def start() -> None:
            """Once there are candidates (before any is planned: a refusal is then all the run says, and the
            delivery processes share none of a batch's memory) or, without any, emails to deliver: the templates
            checked before the first write, as every refusal; leases that ran out expired; the workers forked."""
            if helpers:
                return
            check_templates(context.renderer, settings)
            summary.expired += expire_lapsed(engine, settings.delivery, now=clock.now())
            # The delivery loop's modules (the transport, the event loop, MIME) load only now: a run with
            # nothing to do starts without them.
            from dunning.run.workers import DeliveryWorkers
            helpers.append(held.enter_context(DeliveryWorkers(context, settings.delivery.workers - 1
                                                              if deliver_too else 0)))

        batches = planned_batches(context, as_of, summary, found=start)
        first = next(batches, None)
        if not helpers and not ledger.outbox_due(engine, now=clock.now(), unknown_policy=settings.delivery.unknown):
            summary.queue_state(ledger.queue_state(engine, now=clock.now()))
            return
        start()
        enqueue_batches(context, chain([first] if first else [], batches), as_of)
        helpers[0].planning_done()
        if deliver_too:
            from dunning.run.deliver import deliver, run_loop
            context.stages.lap("other")
            run_loop(deliver(context, summary))
            for counts in helpers[0].results():
                summary.add(counts)
    summary.queue_state(ledger.queue_state(engine, now=clock.now()))


def open_run(settings: Settings, *, signs: bool = True, sends: bool = True, progress: Progress = quiet,
             clock: Clock = SYSTEM_CLOCK, stages: Stages = OFF, timers: Timers | None = None,
             templates: bool = True) -> RunContext:
    """preflight (its templates too unless told not to: then the caller checks them before its first write),
    then the store opened (migrated if needed): the context every step of the run is given."""
    renderer = preflight(settings, signs=signs, sends=sends, templates=templates)
    return RunContext(settings, store.connect(settings.database.url), renderer, clock, progress,
                      partial(smtp_transport, timers=timers),
                      links=LinkSigner(settings.links) if signs else None,
                      dkim=dkim_signer(settings.dkim) if sends else None, stages=stages)


def preflight(settings: Settings, *, signs: bool = True, sends: bool = True, templates: bool = True) -> Renderer:
    """Every check that can refuse a run, before it writes anything: the signing key (when it signs
    links), the SMTP and TLS settings (when it sends), and (unless templates is False) the templates, see
    check_templates; the renderer."""
    if signs:
        links.require_signing_key(settings.links)
    if sends:
        password = settings.smtp.password.get_secret_value() if settings.smtp.password else None
        check_settings(settings.smtp, password)
        if settings.smtp.tls != "none":
            tls_context(settings.smtp)
    renderer = make_renderer(settings)
    if templates:
        check_templates(renderer, settings)
    return renderer


def check_templates(renderer: Renderer, settings: Settings) -> None:
    """Every template compiled, and its sample scenarios rendered within the limits; the renderer, ready."""
    for notice in NOTICES:  # a syntax error shows in any locale: the default's compiled code is used anyway
        renderer.prepare(notice, settings.i18n.default_locale)
    refuse_over_limits(renderer, Path(settings.i18n.templates_dir), settings.i18n.default_locale)


def make_renderer(settings: Settings) -> Renderer:
    """The renderer over the configured templates and catalogs."""
    return RenderLimits.of(settings).renderer(Path(settings.i18n.templates_dir), Path(settings.i18n.locales_dir),
                                              settings.i18n.default_locale)
