"""dunning deliver: send what `dunning run --no-deliver` enqueued; any number of them, on any number of hosts."""

from __future__ import annotations

import argparse

from dunning.commands._arguments import port
from dunning.commands.run import add_metrics_option, add_profile_option, finish, metrics_report, progress_reporter
from dunning.errors import SettingsError
from dunning.run.drain import POLL_SECONDS, deliver_outbox
from dunning.run.metrics import metrics_served
from dunning.run.summary import RunSummary
from dunning.settings import load_settings

NAME = "deliver"
HELP = "send the emails waiting in the outbox (claim, render, send, record) until it is empty, or for ever"


def configure(parser: argparse.ArgumentParser) -> None:
    until = parser.add_mutually_exclusive_group()
    until.add_argument("--until-empty", dest="forever", action="store_false",
                       help="stop once the outbox holds nothing due (the default)")
    until.add_argument("--forever", dest="forever", action="store_true",
                       help="keep polling the outbox, as a service; SIGTERM or SIGINT stops it once the batch "
                            "in hand is sent and recorded")
    parser.set_defaults(forever=False)
    parser.add_argument("--poll-seconds", type=positive_seconds, default=POLL_SECONDS, metavar="SECONDS",
                        help=f"with --forever: the pause between two looks at an empty outbox "
                             f"(default {POLL_SECONDS:g})")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_metrics_option(parser)
    add_profile_option(parser)
    parser.add_argument("--metrics-port", type=port, metavar="PORT",
                        help="with --forever: serve the figures at http://ADDRESS:PORT/metrics for Prometheus")
    parser.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDRESS",
                        help="the address --metrics-port listens on (default 127.0.0.1, this machine only; "
                             "0.0.0.0 in a container scraped from outside)")


def positive_seconds(value: str) -> float:
    """--poll-seconds: a number of seconds above 0."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {value!r}")
    return seconds


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    if args.metrics_port is not None and not args.forever:
        raise SettingsError("--metrics-port serves a long-running deliverer: give --forever too")
    with metrics_report(args, "deliver", settings) as report, \
            metrics_served(report, args.metrics_port, args.metrics_address), \
            progress_reporter(enabled=not args.json, show_bar=args.log_format == "text") as progress:

        def after_pass(summary: RunSummary) -> None:
            report.summary, report.completed = summary.as_dict(), True
            report.write()

        summary = deliver_outbox(settings, forever=args.forever, poll_seconds=args.poll_seconds, progress=progress,
                                 after_pass=after_pass, profile=args.profile_stages)
        report.summary, report.completed = summary.as_dict(), summary.stopped is None
    return finish("deliver", summary, as_json=args.json)
