"""The CPU a run spends in each stage of the line, counted only when asked (`dunning run --profile-stages`).

The counters are laps of the process's CPU clock: each boundary between two stages adds the CPU spent
since the previous boundary to the stage that just ended, so the stages of a process add up to its CPU
time from the first lap to the last. Delivery interleaves its sends on one event loop; a send's own steps
(render, MIME, record…) are each closed by a lap opened just before them, and whatever ran between two of
them (the event loop, the transport reading replies and writing data) is counted as SMTP. Off, a run
holds OFF, whose lap does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

__all__ = ["STAGES", "Stages", "StageClock", "OFF", "stage_clock", "add", "table"]

# In the order of the line; "other" is the run's own bookkeeping (start-up, forking, the queue's state).
STAGES = ("plan", "enqueue", "claim", "render", "mime", "sign", "smtp", "record", "other")


class Stages:
    """Counters that count nothing: what a run holds when it is not profiled."""

    __slots__ = ()

    def lap(self, stage: str) -> None:
        """The CPU since the previous lap was spent in stage."""

    def fresh(self) -> Stages:
        """Counters of the same kind, from zero (a forked process counts its own)."""
        return self

    def seconds(self) -> dict[str, float]:
        """CPU seconds per stage (none when off)."""
        return {}


OFF = Stages()


class StageClock(Stages):
    """CPU seconds per stage of this process, from the moment it is made."""

    __slots__ = ("_spent", "_last", "_clock")

    def __init__(self) -> None:
        self._clock = time.process_time
        self._spent = dict.fromkeys(STAGES, 0.0)
        self._last = self._clock()

    def lap(self, stage: str) -> None:
        now = self._clock()
        self._spent[stage] += now - self._last
        self._last = now

    def fresh(self) -> StageClock:
        return StageClock()

    def seconds(self) -> dict[str, float]:
        return dict(self._spent)


def stage_clock(enabled: bool) -> Stages:
    """Counting counters when enabled, else OFF."""
    return StageClock() if enabled else OFF


def add(into: dict[str, float], seconds: Mapping[str, float]) -> None:
    """Fold one process's CPU seconds per stage into a run's."""
    for stage, spent in seconds.items():
        into[stage] = into.get(stage, 0.0) + spent


def table(seconds: Mapping[str, float], emails: int, unit: str = "sent email") -> str:
    """The CPU budget as a markdown table: per stage, CPU seconds, microseconds per email and share."""
    total = sum(seconds.values())
    lines = [f"| stage | CPU s | CPU µs per {unit} | share |", "| --- | ---: | ---: | ---: |"]
    for stage in (*STAGES, "total"):
        spent = total if stage == "total" else seconds.get(stage, 0.0)
        per_email = f"{spent / emails * 1e6:,.0f}" if emails else "n/a"
        share = f"{spent / total:.0%}" if total else "n/a"
        lines.append(f"| {stage} | {spent:.3f} | {per_email} | {share} |")
    return "\n".join(lines)
