"""Extra delivery processes: they send what the main process enqueues, while it is still planning."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict

from dunning.settings import Settings

_planning_done = None  # the Event shared with this worker process, set by _init


def _init(event) -> None:
    global _planning_done
    _planning_done = event


def _deliver(settings: Settings) -> dict:
    from dunning import pipeline, store
    summary = pipeline.RunSummary()
    engine = store.connect(settings.database.url, migrate=False)
    renderer = pipeline.make_renderer(settings)
    pipeline.run_loop(pipeline.deliver(engine, settings, renderer, summary, lambda what, n: None,
                                 more_coming=lambda: not _planning_done.is_set()))
    return asdict(summary)


class DeliveryWorkers:
    """`count` processes delivering from the outbox until planning is done and the queue is empty."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings, self.count = settings, count
        self._futures: list[Future] = []
        self._pool: ProcessPoolExecutor | None = None
        self._event = None

    def __enter__(self) -> DeliveryWorkers:
        return self

    def start(self) -> None:
        """Start the processes (once): only a run that enqueued something pays for them."""
        if self.count > 0 and self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._event = context.Event()
            self._pool = ProcessPoolExecutor(self.count, mp_context=context, initializer=_init,
                                             initargs=(self._event,))
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
