"""Watch the templates, locales and scenarios folders and tell every open page what changed.

Editors and `git checkout` replace a folder rather than write into it: the watch then sees no more
events from the old folder. Each second without events the folders are looked at again; a replaced
folder restarts the watch (and every page reloads), a missing one is announced until it is back.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from watchfiles import Change, awatch

__all__ = ["WATCHED_SUFFIXES", "Broadcast", "watch"]

WATCHED_SUFFIXES = frozenset({".mjml", ".txt", ".html", ".j2", ".jinja", ".po", ".pot", ".json"})
# watchfiles waits for `STEP_MS` of quiet before it reports a batch (an editor's save is several writes),
# and never longer than `DEBOUNCE_MS` while writes keep coming; every `LOOK_MS` without a batch the
# folders themselves are looked at.
STEP_MS, DEBOUNCE_MS, LOOK_MS = 30, 400, 500

Changes = set[tuple[Change, str]]


class Broadcast:
    """Fan-out of change events to every subscriber (one queue per open page), and whether watching works."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, object]]] = set()
        self.generation = 0
        self.watching: dict[str, object] = {"watching": True, "message": ""}

    def publish(self, event: dict[str, object]) -> None:
        """Number the event and hand it to every subscriber."""
        self.generation += 1
        for queue in self._queues:
            queue.put_nowait({**event, "generation": self.generation})

    def announce(self, watching: bool, message: str = "") -> None:
        """Tell every page whether saved files still reach it (sent once per change of state)."""
        status: dict[str, object] = {"watching": watching, "message": message}
        if status != self.watching:
            self.watching = status
            self.publish({"event": "watching", **status})

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, object]]]:
        """A queue of events for as long as the caller holds it."""
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)


def _identity(folders: list[Path]) -> tuple[tuple[int, int] | None, ...]:
    """Which folders stand where (device and inode), None for a missing one."""
    found = []
    for folder in folders:
        try:
            stat = os.stat(folder)
            found.append((stat.st_dev, stat.st_ino) if os.path.isdir(folder) else None)
        except OSError:
            found.append(None)
    return tuple(found)


async def watch(folders: list[Path], on_change: Callable[[Changes], dict[str, object] | None],
                broadcast: Broadcast, stop: asyncio.Event) -> None:
    """Until stop is set: each batch of changes to watched files goes through on_change, then to every page."""
    while not stop.is_set():
        identity = _identity(folders)
        missing = [folder for folder, found in zip(folders, identity, strict=True) if found is None]
        if missing:
            broadcast.announce(False, f"{', '.join(str(f) for f in missing)} is missing: waiting for it to be back")
        if len(missing) == len(folders):
            await _pause(stop)
            continue
        existing = [folder for folder in folders if folder not in missing]
        with suppress(OSError, RuntimeError):   # the watched folder went away under the watcher
            await _follow(existing, folders, identity, on_change, broadcast, stop)
        if not stop.is_set():   # a folder was replaced or came back: whatever is there now is new
            event = on_change({(Change.added, str(folder)) for folder in folders})
            if event is not None:
                broadcast.publish(event)
            if _identity(folders).count(None) == 0:
                broadcast.announce(True)


async def _follow(existing: list[Path], folders: list[Path], identity: tuple[tuple[int, int] | None, ...],
                  on_change: Callable[[Changes], dict[str, object] | None], broadcast: Broadcast,
                  stop: asyncio.Event) -> None:
    """Watch the existing folders until stop is set or any folder is replaced, removed or restored."""
    async for changes in awatch(*existing, stop_event=stop, step=STEP_MS, debounce=DEBOUNCE_MS,
                                rust_timeout=LOOK_MS, yield_on_timeout=True,
                                watch_filter=lambda _change, path: Path(path).suffix in WATCHED_SUFFIXES):
        if changes:
            event = on_change(changes)
            if event is not None:
                broadcast.publish(event)
        if _identity(folders) != identity:
            return


async def _pause(stop: asyncio.Event) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), LOOK_MS / 1000)
