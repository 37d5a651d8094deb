"""A run's figures for Prometheus: one collector, read by a textfile, a /metrics endpoint or a Pushgateway.

Names follow Prometheus' conventions: counters end in `_total` and only grow (a textfile carries
them over from the file the previous run left, so cron runs add up like one long process), durations
and times are in seconds, and `dunning_outbox_emails{state}` is the queue as it stands, by state.
Every metric carries a `command` label (run or deliver). The textfile is written to a temporary name
in its own folder and renamed over the old one (`prometheus_client.write_to_textfile`), so
node_exporter's collector never reads half a file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dunning import store
from dunning.errors import DunningError, OutputError
from dunning.run.clock import Clock

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = ["OUTCOMES", "OUTBOX_STATES", "Report", "RunCollector", "metrics_written", "registry_of",
           "previous_counters", "require_writable", "outbox_reader", "metrics_served", "push"]

# summary field → the `outcome` label of dunning_emails_total
OUTCOMES = {"sent": "sent", "retried": "retried", "failed": "failed", "unknown": "unknown"}
# summary field → (counter name without _total, help)
OTHER_COUNTERS = {
    "recipients_refused": ("dunning_recipients_refused", "Recipients that refused an email for good (5xx)."),
    "deferred": ("dunning_notices_deferred", "Notices due but deferred to the account's send window."),
}
EMAILS = "dunning_emails"
OUTBOX = "dunning_outbox_emails"
OUTBOX_STATES = ("queued", "sending", "retry", "unknown")
DURATION = "dunning_last_run_duration_seconds"
SUCCESS = "dunning_last_run_success"
LAST_SUCCESS = "dunning_last_success_timestamp_seconds"

Outbox = Callable[[], Mapping[str, int]]  # the queue's emails by state, read when asked
log = logging.getLogger("dunning.metrics")


class Report:
    """What one command has to report: its summary so far, whether it completed, the queue's state."""

    def __init__(self, command: str, clock: Clock, *, path: Path | None = None,
                 base: Mapping[tuple[str, str], float] | None = None, outbox: Outbox | None = None,
                 last_success: float | None = None) -> None:
        self.command, self.clock, self.outbox, self.path = command, clock, outbox, path
        self.base = dict(base or {})         # counters carried over from an earlier run's textfile
        self.started = clock.now()
        self.ended = self.started
        self.summary: Mapping[str, Any] | None = None   # set once the run has one
        self.completed = False                          # set when the run ran to its end
        self.last_success = last_success

    def write(self) -> None:
        """Take the time now as the run's end (and success time, when it completed); replace the textfile."""
        self.ended = self.clock.now()
        if self.completed:
            self.last_success = self.ended.timestamp()
        if self.path is not None:
            from prometheus_client import write_to_textfile

            write_to_textfile(str(self.path), registry_of(self))

    def counter(self, name: str, label: str, field: str) -> float:
        """A counter's value: what an earlier run left plus this run's count."""
        count = int((self.summary or {}).get(field) or 0)
        return self.base.get((name, label), 0.0) + count


class RunCollector:
    """The metric families of a Report, as they stand each time they are collected."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        """Counters, the outbox gauge, duration, success and last success time."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        r, command = self.report, self.report.command
        emails = CounterMetricFamily(EMAILS, "Emails whose outcome a run recorded, by outcome.",
                                     labels=["command", "outcome"])
        for field, outcome in OUTCOMES.items():
            emails.add_metric([command, outcome], r.counter(EMAILS, outcome, field))
        yield emails
        for field, (name, help_text) in OTHER_COUNTERS.items():
            yield _counter(name, help_text, command, r.counter(name, "", field))
        counts = _read(r.outbox)
        if counts is not None:
            outbox = GaugeMetricFamily(OUTBOX, "Emails in the outbox by state, read when the metrics are.",
                                       labels=["command", "state"])
            for state in OUTBOX_STATES:
                outbox.add_metric([command, state], counts.get(state, 0))
            yield outbox
        yield _gauge(DURATION, "Wall seconds the last run took (so far, while it runs).", command,
                     ((r.ended if r.summary is not None else r.clock.now()) - r.started).total_seconds())
        yield _gauge(SUCCESS, "1 when the last run completed (nothing stopped it), else 0.", command, r.completed)
        if r.last_success is not None:
            yield _gauge(LAST_SUCCESS, "Unix time the last completed run ended.", command, r.last_success)


def _read(outbox: Outbox | None) -> Mapping[str, int] | None:
    """The outbox's counts, or None when there is no store to read (or it cannot be read now)."""
    if outbox is None:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return outbox()
    except (SQLAlchemyError, DunningError) as exc:  # the metrics must not hide why a command ended
        log.warning("the outbox could not be read for the metrics: %s", type(exc).__name__)
        return None


def outbox_reader(url: str) -> Outbox:
    """Count the outbox's unfinished emails by state, on one engine kept for every read."""
    from sqlalchemy import func, select

    engine = None
    emails = store.emails
    query = (select(emails.c.status, func.count()).where(emails.c.status.in_(OUTBOX_STATES))
             .group_by(emails.c.status))

    def read() -> Mapping[str, int]:
        nonlocal engine
        engine = engine or store.connect(url, migrate=False)
        with engine.connect() as conn:
            return {status: int(count) for status, count in conn.execute(query).all()}
    return read


def _gauge(name: str, help_text: str, command: str, value: float) -> Metric:
    from prometheus_client.core import GaugeMetricFamily
    family = GaugeMetricFamily(name, help_text, labels=["command"])
    family.add_metric([command], float(value))
    return family


def _counter(name: str, help_text: str, command: str, value: float) -> Metric:
    from prometheus_client.core import CounterMetricFamily
    family = CounterMetricFamily(name, help_text, labels=["command"])
    family.add_metric([command], value)
    return family


def registry_of(report: Report) -> CollectorRegistry:
    """A registry holding the report's collector alone (no process or platform metrics)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunCollector(report))
    return registry


def previous_counters(path: Path, command: str) -> tuple[dict[tuple[str, str], float], float | None]:
    """The counters (by name and outcome) and the last success time a textfile holds for this command."""
    from prometheus_client.parser import text_string_to_metric_families

    counters: dict[tuple[str, str], float] = {}
    last: float | None = None
    try:
        text = path.read_text(encoding="utf-8")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("command") != command:
                    continue
                if family.type == "counter" and sample.name.endswith("_total"):
                    counters[(family.name, sample.labels.get("outcome", ""))] = float(sample.value)
                elif sample.name == LAST_SUCCESS:
                    last = float(sample.value)
    except (OSError, UnicodeDecodeError, ValueError):  # no file, or not a metrics file: nothing carried over
        return {}, None
    return counters, last


def require_writable(path: Path) -> None:
    """Refuse, before the run writes anything, a metrics file whose folder cannot take it."""
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"--metrics-file {path}: folder {folder} does not exist", path=str(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"--metrics-file {path}: folder {folder} is not writable", path=str(path))
    if path.is_dir():
        raise OutputError(f"--metrics-file {path}: is a folder", path=str(path))


@contextmanager
def metrics_written(path: Path | None, command: str, clock: Clock, *, outbox: Outbox | None = None,
                    pushgateway: str | None = None) -> Iterator[Report]:
    """A Report whose textfile (when path is given) is written, and pushed to the Pushgateway (when one is
    given), when the block ends, however it ends."""
    base: dict[tuple[str, str], float] = {}
    last: float | None = None
    if path is not None:
        require_writable(path)
        base, last = previous_counters(path, command)
    report = Report(command, clock, path=path, base=base, outbox=outbox, last_success=last)
    try:
        yield report
    finally:
        report.write()
        if pushgateway is not None:
            push(report, pushgateway)


@contextmanager
def metrics_served(report: Report, port: int | None, address: str = "127.0.0.1") -> Iterator[None]:
    """Serve the report on http://address:port/metrics while the block runs (nothing when port is None)."""
    if port is None:
        yield
        return
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=address, registry=registry_of(report))
    except OSError as exc:
        raise OutputError(f"--metrics-port {port}: cannot listen on {address}: {exc.strerror}",
                          path=f"{address}:{port}") from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def push(report: Report, gateway: str) -> None:
    """Replace this command's group on the Pushgateway (job dunning, label command); a failure is logged."""
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(gateway, job="dunning", grouping_key={"command": report.command},
                        registry=registry_of(report), timeout=10)
    except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
        log.error("the metrics could not be pushed to %s: %s", gateway, exc, extra={"command": report.command})
