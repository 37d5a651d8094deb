"""A run's figures for Prometheus, in a file node_exporter's textfile collector reads.

The file is written to a temporary name in its own folder and renamed over the old one
(`prometheus_client.write_to_textfile`), so the collector never reads half a file. The last success
timestamp survives a failed run: it is carried over from the file the previous run left.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from dunning.errors import OutputError
from dunning.run.clock import Clock

__all__ = ["FIGURES", "Report", "figures", "write_metrics", "metrics_written"]

# name in the summary → (metric name, help); every metric carries a `command` label (run or deliver).
FIGURES = {
    "sent": ("dunning_last_run_sent_emails", "Emails the SMTP server accepted in the last run."),
    "failed": ("dunning_last_run_failed_emails", "Emails that failed for good in the last run."),
    "retried": ("dunning_last_run_retried_emails", "Emails the last run put back to be retried later."),
    "unknown": ("dunning_last_run_unknown_emails", "Emails whose outcome became unknown in the last run."),
    "deferred": ("dunning_last_run_deferred_notices", "Notices due but deferred to the account's send window."),
    "waiting": ("dunning_waiting_emails", "Retries in the outbox due later than the end of the last run."),
    "held": ("dunning_held_emails", "Emails of unknown outcome held for `dunning reconcile`."),
}
DURATION = "dunning_last_run_duration_seconds"
SUCCESS = "dunning_last_run_success"
LAST_SUCCESS = "dunning_last_success_timestamp_seconds"


def figures(summary: Mapping[str, Any]) -> dict[str, int]:
    """The counts the metrics report: the run's own, and the queue's state after it (waiting, held)."""
    return {name: int(summary.get(name) or 0) for name in FIGURES}


def write_metrics(path: Path, command: str, counts: Mapping[str, int] | None, *, duration: float,
                  succeeded_at: datetime | None) -> None:
    """Replace the metrics file: counts (none when the run ended in an error), duration, success."""
    # prometheus_client loads only when a metrics file is written: every other run starts sooner.
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()

    def gauge(name: str, help_text: str, value: float) -> None:
        Gauge(name, help_text, ["command"], registry=registry).labels(command).set(value)

    for key, value in (counts or {}).items():
        gauge(*FIGURES[key], value)
    gauge(DURATION, "Wall seconds the last run took.", duration)
    gauge(SUCCESS, "1 when the last run completed (nothing stopped it), else 0.", succeeded_at is not None)
    last = succeeded_at.timestamp() if succeeded_at else previous_success(path, command)
    if last is not None:
        gauge(LAST_SUCCESS, "Unix time the last completed run ended.", last)
    write_to_textfile(str(path), registry)


def previous_success(path: Path, command: str) -> float | None:
    """The last success timestamp a metrics file holds for this command, if it holds one."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and sample.labels.get("command") == command:
                    return float(sample.value)
    except ValueError:  # not a metrics file: nothing to carry over
        return None
    return None


def require_writable(path: Path) -> None:
    """Refuse, before the run writes anything, a metrics file whose folder cannot take it."""
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"--metrics-file {path}: folder {folder} does not exist", path=str(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"--metrics-file {path}: folder {folder} is not writable", path=str(path))
    if path.is_dir():
        raise OutputError(f"--metrics-file {path}: is a folder", path=str(path))


class Report:
    """A metrics file being kept for one command: the block of `metrics_written` hands its summary here."""

    def __init__(self, path: Path | None, command: str, clock: Clock) -> None:
        self.path, self.command, self.clock = path, command, clock
        self.started = clock.now()
        self.summary: Mapping[str, Any] | None = None   # set once the run has one
        self.completed = False                          # set when the run ran to its end

    def write(self) -> None:
        """Replace the metrics file with what is known now (nothing when no path was given)."""
        if self.path is None:
            return
        ended = self.clock.now()
        counts = figures(self.summary) if self.summary is not None else None
        write_metrics(self.path, self.command, counts, duration=(ended - self.started).total_seconds(),
                      succeeded_at=ended if self.completed else None)


@contextmanager
def metrics_written(path: Path | None, command: str, clock: Clock) -> Iterator[Report]:
    """Write the metrics file when the block ends, however it ends; nothing when path is None."""
    if path is not None:
        require_writable(path)
    report = Report(path, command, clock)
    try:
        yield report
    finally:
        report.write()
