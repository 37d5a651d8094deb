"""dunning bounces ingest: read bounce messages (Maildir, mbox, or one on stdin) and suppress dead addresses."""

from __future__ import annotations

import argparse
import json
from itertools import chain
from pathlib import Path

from dunning import store
from dunning.bounces.ingest import ingest
from dunning.bounces.sources import read_source
from dunning.errors import BounceSourceError, ExitCode, SettingsError
from dunning.run.clock import SYSTEM_CLOCK
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "bounces"
HELP = "ingest bounce messages (DSNs) sent back to the VERP return path; suppress addresses that bounce"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    read = actions.add_parser("ingest", help="read bounce messages and record what they say (idempotent)",
                              description="Read bounce messages from Maildirs (directories), mbox files, or "
                                          "standard input (-, the default: one message, as an MTA's pipe or "
                                          "alias hands it over) and record each once.")
    read.add_argument("sources", nargs="*", default=["-"], metavar="SOURCE",
                      help="a Maildir, an mbox file, or - for one message on standard input (default)")
    read.add_argument("--json", action="store_true", help="print the counts as one JSON object")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    if settings.bounces.return_path is None:
        raise SettingsError("bounces.return_path is not set: emails carry no bounce address to match bounces to")
    keys = settings.links.key_list
    if not keys:
        raise SettingsError("no key verifies bounce addresses: set DUNNING_LINKS__KEYS (the keys that signed them)")
    for source in args.sources:  # refuse a missing source before anything is read or written
        if source != "-" and not Path(source).exists():
            raise BounceSourceError(f"{source}: no such file or directory; nothing ingested")
    engine = store.connect(settings.database.url)
    try:
        messages = chain.from_iterable(read_source(source) for source in args.sources)
        report = ingest(engine, messages, settings.bounces, keys, now=SYSTEM_CLOCK.now())
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(f"{report.messages} messages: {report.hard} hard, {report.soft} soft, {report.ignored} not a failure, "
              f"{report.unparsed} unparsed, {report.unmatched} not to a signed bounce address, "
              f"{report.duplicates} already ingested; {len(report.suppressed)} addresses suppressed")
        if report.unparsed or report.unmatched:
            print(f"kept aside for a person to read: {settings.bounces.unparsed}")
    return ExitCode.OK
