"""The cycle collector's settings for the length of a run, each put back as it was when the run ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["COLLECT_EVERY", "fewer_collections", "frozen_while_forked"]

COLLECT_EVERY = 20_000  # new container objects between two passes of the cycle collector


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's cycle collector every COLLECT_EVERY new objects instead of 700, while inside.

    Nearly everything a notice allocates is freed as soon as it is done with; the default threshold
    still runs a pass every few notices, a noticeable share of a run's CPU. Processes forked meanwhile
    inherit the setting.
    """
    before = gc.get_threshold()
    gc.set_threshold(COLLECT_EVERY, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def frozen_while_forked() -> Iterator[None]:
    """The objects alive now out of the collector's reach while inside (processes are forked inside).

    Its passes would write to every one of them in each process and turn the pages the processes share
    into private copies. Leaving, they are handed back to the collector.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
