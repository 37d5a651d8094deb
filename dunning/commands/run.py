"""dunning run: plan, enqueue, send and record every notice that is due."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from dunning.commands._arguments import as_of
from dunning.logs import note
from dunning.run import job, stages
from dunning.run.clock import SYSTEM_CLOCK
from dunning.run.metrics import Report, metrics_written, outbox_reader
from dunning.run.summary import Progress, RunSummary
from dunning.settings import Settings, load_settings

__all__ = ["NAME", "HELP", "configure", "run", "print_summary", "progress_reporter", "add_profile_option"]

NAME = "run"
HELP = "send every notice that is due (plan, enqueue, render, send, record)"
log = logging.getLogger("dunning.run")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=as_of, metavar="RFC3339", help="the moment to decide for (default: now)")
    parser.add_argument("--dry-run", action="store_true", help="plan and count, record and send nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--no-deliver", action="store_true",
                        help="plan and enqueue only: `dunning deliver` processes send what is enqueued")
    add_metrics_option(parser)
    add_profile_option(parser)


def add_profile_option(parser: argparse.ArgumentParser) -> None:
    """--profile-stages, shared with `dunning deliver`."""
    parser.add_argument("--profile-stages", action="store_true",
                        help="count the CPU each stage spends (plan, enqueue, claim, render, MIME, sign, SMTP, "
                             "record) and print it per sent email on stderr (and under \"stages\" with --json)")


def add_metrics_option(parser: argparse.ArgumentParser) -> None:
    """--metrics-file and --pushgateway, shared with `dunning deliver`."""
    parser.add_argument("--metrics-file", type=Path, metavar="PATH",
                        help="write the run's figures there in Prometheus' text format (for node_exporter's "
                             "textfile collector; the name must end in .prom), replaced atomically")
    parser.add_argument("--pushgateway", metavar="URL",
                        help="push the figures to this Prometheus Pushgateway when the command ends (job "
                             "dunning, label command), e.g. http://pushgateway:9091 for a Kubernetes Job")


def metrics_report(args: argparse.Namespace, command: str, settings: Settings) -> AbstractContextManager[Report]:
    """The metrics block of a command: its textfile, Pushgateway and outbox, as its options ask."""
    wanted = args.metrics_file is not None or args.pushgateway is not None or getattr(args, "metrics_port", None)
    return metrics_written(args.metrics_file, command, SYSTEM_CLOCK, pushgateway=args.pushgateway,
                           outbox=outbox_reader(settings.database.url) if wanted else None)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    with metrics_report(args, "run", settings) as report, \
            progress_reporter(enabled=not args.json, show_bar=args.log_format == "text") as progress:
        summary = job.run(settings, as_of=args.as_of or SYSTEM_CLOCK.now(), dry_run=args.dry_run,
                          progress=progress, deliver_too=not args.no_deliver, profile=args.profile_stages)
        report.summary, report.completed = summary.as_dict(), summary.stopped is None
    return finish("run", summary, as_json=args.json)


def finish(command: str, summary: RunSummary, *, as_json: bool) -> int:
    """Print the summary, say why delivery stopped early if it did; the exit code."""
    print_summary(summary, as_json=as_json)
    if summary.stages:   # planned emails when none was sent here (--no-deliver)
        emails, unit = (summary.sent, "sent email") if summary.sent else (summary.planned, "planned email")
        print(stages.table(summary.stages, emails, unit), file=sys.stderr)
    if summary.stopped:
        log.warning("dunning %s: stopped early: %s", command, summary.stopped, extra={"command": command})
    return summary.exit_code()


def print_summary(summary: RunSummary, *, as_json: bool) -> None:
    """One line for people, or one JSON object for cron's logs."""
    if as_json:
        print(json.dumps(summary.as_dict()))
        return
    counts = summary.as_dict()
    counts.pop("stopped")
    counts.pop("stages", None)
    print(", ".join(f"{value} {name}" for name, value in counts.items()))
    if summary.unreachable:
        note(f"{summary.unreachable} accounts due for dunning have no reachable contact (every address "
             "suppressed after bounces): see `dunning suppressions list --accounts`", event="unreachable",
             count=summary.unreachable)


@contextmanager
def progress_reporter(*, enabled: bool, show_bar: bool = True) -> Iterator[Progress]:
    """A progress bar on a terminal (unless show_bar is False), plain log lines otherwise."""
    if enabled and show_bar and sys.stderr.isatty():
        from rich.progress import Progress, TaskID
        with Progress(transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def advance(what: str, count: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(what, total=None)
                bar.advance(tasks[what], count)
            yield advance
        return
    totals: dict[str, int] = {}

    def log_line(what: str, count: int) -> None:
        totals[what] = totals.get(what, 0) + count
        if enabled and count:
            log.info("%s %d (total %d)", what, count, totals[what],
                     extra={"event": what, "count": count, "total": totals[what]})
    yield log_line
