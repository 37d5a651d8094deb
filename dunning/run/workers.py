"""Extra delivery processes: they send what the main process enqueues, while it is still planning.

They are forked from the main process before planning allocates anything: they inherit the
libraries and the renderer instead of importing and loading them again, and the memory pages stay
shared between the processes until one of them writes to them.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing.synchronize import Event
from typing import Any

from dunning import store
from dunning.emails.render import Renderer
from dunning.run.clock import Clock
from dunning.run.deliver import deliver, run_loop
from dunning.run.summary import RunSummary
from dunning.settings import Settings

__all__ = ["DeliveryWorkers"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class _Handover:
    """What a forked worker takes from the main process, handed over by fork, never pickled."""

    settings: Settings
    renderer: Renderer
    clock: Clock
    planning_done: Event


_handover: _Handover | None = None  # set in each worker process by _start_worker


def _start_worker(parent: int, handover: _Handover) -> None:
    """Make this process end when the main process does, however that ends (SIGKILL included): what a
    killed run was sending is then unknown, never sent on by a process nobody waits for."""
    global _handover
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the main process died before the line above took effect
        os._exit(1)
    _handover = handover


def _deliver() -> dict[str, Any]:
    """One worker's delivery loop, until planning is done and the queue is empty."""
    assert _handover is not None, "runs only in a process started by DeliveryWorkers"
    given = _handover
    summary = RunSummary()
    engine = store.connect(given.settings.database.url, migrate=False)  # never the main process's connections
    run_loop(deliver(engine, given.settings, given.renderer, summary, lambda what, n: None, given.clock,
                     more_coming=lambda: not given.planning_done.is_set()))
    return asdict(summary)


class DeliveryWorkers:
    """`count` processes delivering from the outbox until planning is done and the queue is empty."""

    def __init__(self, settings: Settings, count: int, renderer: Renderer, clock: Clock) -> None:
        self.settings, self.count, self.renderer, self.clock = settings, count, renderer, clock
        self._futures: list[Future[dict[str, Any]]] = []
        self._pool: ProcessPoolExecutor | None = None
        self._event: Event | None = None

    def __enter__(self) -> DeliveryWorkers:
        if self.count > 0:
            self._start()
        return self

    def _start(self) -> None:
        context = multiprocessing.get_context("fork")
        self._event = context.Event()
        handover = _Handover(self.settings, self.renderer, self.clock, self._event)
        # Objects alive now move out of the collector's reach: its passes would write to every one of
        # them in each process and turn the shared pages into private copies.
        gc.collect()
        gc.freeze()
        self._pool = ProcessPoolExecutor(self.count, mp_context=context, initializer=_start_worker,
                                         initargs=(os.getpid(), handover))
        self._futures = [self._pool.submit(_deliver) for _ in range(self.count)]

    def planning_done(self) -> None:
        """Tell the workers that nothing more will be enqueued by this run."""
        if self._event is not None:
            self._event.set()

    def results(self) -> list[dict[str, Any]]:
        """Each worker's summary, once it has finished."""
        return [future.result() for future in self._futures]

    def __exit__(self, *exc_info: object) -> None:
        self.planning_done()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
