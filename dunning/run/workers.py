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
from dataclasses import asdict
from typing import TYPE_CHECKING

from dunning.settings import Settings

if TYPE_CHECKING:
    from dunning.emails.render import Renderer

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_inherited: tuple | None = None  # (planning-done event, renderer), set in the main process just before forking


def _die_with(parent: int) -> None:
    """Make this process end when the main process does, however that ends (SIGKILL included): what
    a killed run was sending is then unknown, never sent on by a process nobody waits for."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the main process died before the line above took effect
        os._exit(1)


def _deliver(settings: Settings) -> dict:
    from dunning import store
    from dunning.run import job
    planning_done, renderer = _inherited  # type: ignore[misc]
    summary = job.RunSummary()
    engine = store.connect(settings.database.url, migrate=False)  # never the main process's connections
    job.run_loop(job.deliver(engine, settings, renderer, summary, lambda what, n: None,
                                       more_coming=lambda: not planning_done.is_set()))
    return asdict(summary)


class DeliveryWorkers:
    """`count` processes delivering from the outbox until planning is done and the queue is empty."""

    def __init__(self, settings: Settings, count: int, renderer: Renderer) -> None:
        self.settings, self.count, self.renderer = settings, count, renderer
        self._futures: list[Future] = []
        self._pool: ProcessPoolExecutor | None = None
        self._event = None

    def __enter__(self) -> DeliveryWorkers:
        if self.count > 0:
            self._start()
        return self

    def _start(self) -> None:
        global _inherited
        context = multiprocessing.get_context("fork")
        self._event = context.Event()
        _inherited = (self._event, self.renderer)
        # Objects alive now move out of the collector's reach: its passes would write to every one of
        # them in each process and turn the shared pages into private copies.
        gc.collect()
        gc.freeze()
        self._pool = ProcessPoolExecutor(self.count, mp_context=context, initializer=_die_with,
                                         initargs=(os.getpid(),))
        self._futures = [self._pool.submit(_deliver, self.settings) for _ in range(self.count)]

    def planning_done(self) -> None:
        """Tell the workers that nothing more will be enqueued by this run."""
        if self._event is not None:
            self._event.set()

    def results(self) -> list[dict]:
        """Each worker's summary, once it has finished."""
        return [future.result() for future in self._futures]

    def __exit__(self, *exc_info: object) -> None:
        self.planning_done()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
