"""Watch the templates, locales and scenarios folders and tell every open page what changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from watchfiles import Change, awatch

__all__ = ["WATCHED_SUFFIXES", "Broadcast", "watch"]

WATCHED_SUFFIXES = frozenset({".mjml", ".txt", ".html", ".j2", ".jinja", ".po", ".pot", ".json"})
# watchfiles waits for `STEP_MS` of quiet before it reports a batch (an editor's save is several writes),
# and never longer than `DEBOUNCE_MS` while writes keep coming.
STEP_MS, DEBOUNCE_MS = 30, 400


class Broadcast:
    """Fan-out of change events to every subscriber (one queue per open page)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, object]]] = set()
        self.generation = 0

    def publish(self, event: dict[str, object]) -> None:
        """Number the event and hand it to every subscriber."""
        self.generation += 1
        for queue in self._queues:
            queue.put_nowait({**event, "generation": self.generation})

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, object]]]:
        """A queue of events for as long as the caller holds it."""
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)


async def watch(folders: list[Path], on_change: Callable[[set[tuple[Change, str]]], dict[str, object] | None],
                broadcast: Broadcast, stop: asyncio.Event) -> None:
    """Until stop is set: each batch of changes to watched files goes through on_change, then to every page."""
    existing = [folder for folder in folders if folder.is_dir()]
    async for changes in awatch(*existing, stop_event=stop, step=STEP_MS, debounce=DEBOUNCE_MS,
                                watch_filter=lambda _change, path: Path(path).suffix in WATCHED_SUFFIXES):
        event = on_change(changes)
        if event is not None:
            broadcast.publish(event)
