"""dunning sync stripe: billing state from Stripe into the store (full the first time, then by events)."""

from __future__ import annotations

import argparse
import json
import sys

from dunning import store
from dunning.commands._arguments import as_of
from dunning.errors import ExitCode
from dunning.run.clock import SYSTEM_CLOCK
from dunning.settings import load_settings
from dunning.sources.stripe.client import StripeSource
from dunning.sources.stripe.sync import sync

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "sync"
HELP = "read billing state from a billing system (Stripe) into the store"


def configure(parser: argparse.ArgumentParser) -> None:
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    stripe = sources.add_parser(
        "stripe", help="customers, cards, subscriptions, invoices and payment attempts from Stripe",
        description="Read Stripe through its API (key in DUNNING_STRIPE__API_KEY) and store it as `dunning import` "
                    "would. The first sync reads every customer; later ones read the events since the last one and "
                    "refetch only the customers they touch.")
    stripe.add_argument("--full", action="store_true", help="read every customer, not only those events touched")
    stripe.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    stripe.add_argument("--as-of", type=as_of, metavar="RFC3339",
                        help="the moment the balance changes it brings happened, for the report (default: now)")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    source = StripeSource(settings.stripe)
    engine = store.connect(settings.database.url)
    terminal = sys.stderr.isatty()

    def progress(done: int) -> None:
        if terminal:
            print(f"\r{done} customers synced", end="", file=sys.stderr, flush=True)

    try:
        summary = sync(engine, source, settings, now=args.as_of or SYSTEM_CLOCK.now(), full=args.full,
                       on_error=lambda text: print(f"rejected: {text}", file=sys.stderr), on_progress=progress)
    finally:
        if terminal:
            print(file=sys.stderr)
        engine.dispose()
    counts = summary.as_dict()
    if args.json:
        print(json.dumps(counts))
    else:
        rate = summary.customers / summary.seconds if summary.seconds else 0.0
        print(f"{summary.mode} sync: {summary.customers} customers ({summary.events} events): {summary.imported} "
              f"imported, {summary.updated} updated, {summary.unchanged} unchanged, {summary.rejected} rejected; "
              f"{summary.requests} requests in {summary.seconds:.1f} s ({rate:.1f} customers/s)")
    return ExitCode.DATA if summary.rejected else ExitCode.OK
