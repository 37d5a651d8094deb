"""`dunning deliver`: drain the shared outbox, until it is empty or, as a service, for ever.

Any number of these run on any number of machines against one PostgreSQL database: claims skip
rows another worker holds, leases bring back what a dead worker held, fences keep a late worker's
outcome from overwriting a newer one (all in dunning.ledger). SIGTERM or SIGINT stops a drain
once the batch in hand is sent and recorded.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from dunning import ledger
from dunning.run.clock import SYSTEM_CLOCK, Clock
from dunning.run.context import RunContext, quiet
from dunning.run.deliver import deliver, run_loop
from dunning.run.flight import expire_lapsed
from dunning.run.job import open_run
from dunning.run.stages import add, stage_clock
from dunning.run.summary import Progress, RunSummary
from dunning.settings import Settings

__all__ = ["deliver_outbox", "drain", "POLL_SECONDS"]

POLL_SECONDS = 5.0  # an idle service's pause between two looks at the outbox
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def deliver_outbox(settings: Settings, *, forever: bool = False, poll_seconds: float = POLL_SECONDS,
                   progress: Progress = quiet, clock: Clock = SYSTEM_CLOCK,
                   after_pass: Callable[[RunSummary], None] | None = None, profile: bool = False) -> RunSummary:
    """Send what the outbox holds until it is empty (or, forever, until SIGTERM/SIGINT); the counts (with
    profile, the CPU of each stage too)."""
    stages = stage_clock(profile)
    # The links were signed when the emails were enqueued.
    context = open_run(settings, signs=False, progress=progress, clock=clock, stages=stages)
    summary = RunSummary()
    try:
        run_loop(_until_signalled(context, summary, forever=forever, poll_seconds=poll_seconds,
                                  after_pass=after_pass))
    finally:
        stages.lap("other")
        add(summary.stages, stages.seconds())
    return summary


async def _until_signalled(run: RunContext, summary: RunSummary, *, forever: bool, poll_seconds: float,
                           after_pass: Callable[[RunSummary], None] | None) -> None:
    """drain, with SIGTERM and SIGINT setting its stop event instead of ending the process."""
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    for number in STOP_SIGNALS:
        loop.add_signal_handler(number, stop.set)
    try:
        await drain(run, summary, stop, forever=forever, poll_seconds=poll_seconds, after_pass=after_pass)
    finally:
        for number in STOP_SIGNALS:
            loop.remove_signal_handler(number)


async def drain(run: RunContext, summary: RunSummary, stop: asyncio.Event, *, forever: bool, poll_seconds: float,
                after_pass: Callable[[RunSummary], None] | None = None) -> None:
    """Expire lapsed leases, send until the queue is empty; forever: wait poll_seconds and again, until stop."""
    engine, clock = run.engine, run.clock
    while not stop.is_set():
        summary.expired += expire_lapsed(engine, run.settings.delivery, now=clock.now())
        await deliver(run, summary, keep_going=lambda: not stop.is_set())
        summary.queue_state(ledger.queue_state(engine, now=clock.now()))
        if not forever or summary.stopped is not None or stop.is_set():
            return
        if after_pass is not None:
            after_pass(summary)
        await _first_of(clock.sleep(poll_seconds), stop.wait())


async def _first_of(*waits: Awaitable[object]) -> None:
    """Wait until the first of these is done; cancel the others."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
