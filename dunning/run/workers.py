"""Extra delivery processes: they send what the main process enqueues, while it is still planning.

They are forked from the main process before planning allocates anything: they inherit the
libraries and the renderer instead of importing and loading them again, and the memory pages stay
shared between the processes until one of them writes to them.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from contextlib import ExitStack
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext, ForkProcess
from multiprocessing.synchronize import Event
from typing import cast

from dunning import store
from dunning.errors import WorkerLost
from dunning.run.collector import frozen_while_forked
from dunning.run.context import RunContext, quiet
from dunning.run.deliver import deliver, run_loop
from dunning.run.summary import RunSummary
from dunning.store.failures import known_failure

__all__ = ["DeliveryWorkers"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _end_with_parent(parent: int) -> None:
    """Make this process end when the main process does, however that ends (SIGKILL included): what a
    killed run was sending is then unknown, never sent on by a process nobody waits for."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the main process died before the line above took effect
        os._exit(1)


def _work(parent: int, run: RunContext, planning_done: Event, report: Connection) -> None:
    """One worker's delivery loop, until planning is done and the queue is empty; its summary (or what
    stopped it) goes back through report. The context comes by fork, never pickled."""
    _end_with_parent(parent)
    stages = run.stages.fresh()  # this process's CPU, from its fork
    try:
        # Never the main process's connections: the worker opens its own.
        engine = store.connect(run.settings.database.url, migrate=False)
        summary = RunSummary()
        stages.lap("other")
        run_loop(deliver(replace(run, engine=engine, progress=quiet, stages=stages), summary,
                         more_coming=lambda: not planning_done.is_set()))
        stages.lap("other")
        summary.stages = stages.seconds()
        report.send((True, summary))
    except Exception as exc:  # raised again in the main process, as a worker of a pool would
        report.send((False, known_failure(exc) or exc))
    finally:
        report.close()


class _Worker:
    """One forked delivery process and the pipe its summary comes back through."""

    def __init__(self, context: ForkContext, run: RunContext, planning_done: Event) -> None:
        self._receive, send = context.Pipe(duplex=False)
        self._process: ForkProcess = context.Process(target=_work, args=(os.getpid(), run, planning_done, send))
        self._process.start()
        send.close()  # the worker holds the other end: its end of file says it is gone

    def result(self) -> RunSummary:
        """Its summary, once it has finished; what stopped it, raised again."""
        try:
            ok, value = self._receive.recv()
        except EOFError:
            self._process.join()
            raise WorkerLost(f"delivery process {self._process.pid} stopped without reporting (exit code "
                             f"{self._process.exitcode}): the emails it held go back to the queue, or are held "
                             "unknown if their data was under way, once their lease runs out") from None
        if not ok:
            raise value
        return cast(RunSummary, value)

    def stop(self) -> None:
        """Wait for it to end and close the pipe."""
        self._process.join()
        self._receive.close()


class DeliveryWorkers:
    """`count` processes delivering from the outbox until planning is done and the queue is empty."""

    def __init__(self, run: RunContext, count: int) -> None:
        self.run, self.count = run, count
        self._workers: list[_Worker] = []
        self._event: Event | None = None
        self._held = ExitStack()

    def __enter__(self) -> DeliveryWorkers:
        if self.count > 0:
            self._start()
        return self

    def _start(self) -> None:
        context = multiprocessing.get_context("fork")
        self._event = context.Event()
        self._held.enter_context(frozen_while_forked())
        self._workers = [_Worker(context, self.run, self._event) for _ in range(self.count)]

    def planning_done(self) -> None:
        """Tell the workers that nothing more will be enqueued by this run."""
        if self._event is not None:
            self._event.set()

    def results(self) -> list[RunSummary]:
        """Each worker's summary, once it has finished."""
        return [worker.result() for worker in self._workers]

    def __exit__(self, *exc_info: object) -> None:
        self.planning_done()
        try:
            for worker in self._workers:
                worker.stop()
        finally:
            self._held.close()
