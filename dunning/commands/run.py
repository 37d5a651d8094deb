"""dunning run: plan, enqueue, send and record every notice that is due."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager

from dunning.commands._arguments import as_of
from dunning.run import job
from dunning.run.clock import SYSTEM_CLOCK
from dunning.run.summary import RunSummary
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run", "print_summary", "progress_reporter"]

NAME = "run"
HELP = "send every notice that is due (plan, enqueue, render, send, record)"
log = logging.getLogger("dunning.run")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=as_of, metavar="RFC3339", help="the moment to decide for (default: now)")
    parser.add_argument("--dry-run", action="store_true", help="plan and count, record and send nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    with progress_reporter(enabled=not args.json) as progress:
        summary = job.run(settings, as_of=args.as_of or SYSTEM_CLOCK.now(), dry_run=args.dry_run,
                               progress=progress)
    print_summary(summary, as_json=args.json)
    if summary.stopped:
        print(f"dunning run: stopped early: {summary.stopped}", file=sys.stderr)
    return summary.exit_code()


def print_summary(summary: RunSummary, *, as_json: bool) -> None:
    """One line for people, or one JSON object for cron's logs."""
    if as_json:
        print(json.dumps(summary.as_dict()))
        return
    counts = summary.as_dict()
    counts.pop("stopped")
    print(", ".join(f"{value} {name}" for name, value in counts.items()))


@contextmanager
def progress_reporter(*, enabled: bool):
    """A progress bar on a terminal, plain log lines otherwise."""
    if enabled and sys.stderr.isatty():
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
            log.info("%s %d (total %d)", what, count, totals[what])
    yield log_line
