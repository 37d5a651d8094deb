"""dunning bounces: ingest bounce messages (Maildir, mbox, or one on stdin); report what the sending side must fix."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from itertools import chain
from pathlib import Path

from dunning.errors import BounceDeferredError, BounceSourceError, ExitCode, SettingsError

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "bounces"
HELP = "ingest bounce messages (DSNs) sent back to the VERP return path; report sending-side failures"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    read = actions.add_parser("ingest", help="read bounce messages and record what they say (idempotent)",
                              description="Read bounce messages from Maildirs (directories), mbox files, or "
                                          "standard input (-, the default: one message, as an MTA's pipe or "
                                          "alias hands it over) and record each once.")
    read.add_argument("sources", nargs="*", default=["-"], metavar="SOURCE",
                      help="a Maildir, an mbox file, or - for one message on standard input (default)")
    read.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    spool = actions.add_parser("spool", help="put one message from standard input into a Maildir, for a later ingest",
                               description="The fast end of an MTA pipe: write the message on standard input "
                                           "into MAILDIR (created when missing) and exit, reading no settings "
                                           "and no database; `dunning bounces ingest MAILDIR` (a timer or a "
                                           "path unit) records it. Exits 75 (try again later) when it cannot.")
    spool.add_argument("maildir", metavar="MAILDIR", help="the Maildir a later ingest reads")
    report = actions.add_parser("report", help="list the failures the sending side must fix, by reason",
                                description="Failures that never suppress a customer because they are the "
                                            "sending side's (blocked, policy, authentication, rate limits, "
                                            "content), counted by reason, with the recipients' domains and "
                                            "the latest diagnostic. --all lists every reason.")
    report.add_argument("--days", type=int, default=30, help="the last DAYS days (default 30; 0: all)")
    report.add_argument("--all", action="store_true", help="every reason, not only the sending side's")
    report.add_argument("--json", action="store_true", help="print one JSON object per reason")


def run(args: argparse.Namespace) -> int:
    if args.action == "spool":
        return _spool(args.maildir)
    from dunning.settings import load_settings

    settings = load_settings(args.settings)
    if args.action == "report":
        return _report(args, settings.database.url)
    if settings.bounces.return_path is None:
        raise SettingsError("bounces.return_path is not set: emails carry no bounce address to match bounces to")
    keys = settings.links.key_list
    if not keys:
        raise SettingsError("no key verifies bounce addresses: set DUNNING_LINKS__KEYS (the keys that signed them)")
    for source in args.sources:  # refuse a missing source before anything is read or written
        if source != "-" and not Path(source).exists():
            raise BounceSourceError(f"{source}: no such file or directory; nothing ingested")
    from dunning import store
    from dunning.bounces.ingest import ingest
    from dunning.bounces.sources import read_source
    from dunning.run.clock import SYSTEM_CLOCK

    engine = store.connect(settings.database.url)
    try:
        messages = chain.from_iterable(read_source(source, settings.bounces.max_message_bytes)
                                       for source in args.sources)
        report = ingest(engine, messages, settings.bounces, keys, now=SYSTEM_CLOCK.now())
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(report.as_dict()))
        return ExitCode.OK
    print(f"{report.messages} messages: {report.hard} hard, {report.soft} soft, {report.ours} sending-side, "
          f"{report.feedback} feedback, {report.autoreply} auto-replies, {report.delivered} not a failure, "
          f"{report.unparsed} unparsed, {report.unmatched} not to a signed bounce address, {report.failed} "
          f"unreadable, {report.duplicates} already ingested; {len(report.suppressed)} addresses suppressed")
    if report.reasons:
        print("reasons: " + ", ".join(f"{reason} {n}" for reason, n in sorted(report.reasons.items())))
    if report.unparsed or report.unmatched or report.failed:
        print(f"kept aside for a person to read: {settings.bounces.unparsed}")
    if report.ours:
        print("sending-side failures (not the customers'): see `dunning bounces report`")
    return ExitCode.OK


def _spool(folder: str) -> int:
    import sys
    from functools import partial

    from dunning.bounces.sources import BLOCK, add_to_maildir

    try:  # copied a block at a time: a message of any size passes through in bounded memory
        add_to_maildir(iter(partial(sys.stdin.buffer.read, BLOCK), b""), Path(folder))
    except OSError as exc:
        raise BounceDeferredError(f"{folder}: the message cannot be spooled: {exc.strerror or exc}") from exc
    return ExitCode.OK


def _report(args: argparse.Namespace, url: str) -> int:
    from dunning import store
    from dunning.bounces.report import by_reason
    from dunning.run.clock import SYSTEM_CLOCK

    since = SYSTEM_CLOCK.now() - timedelta(days=args.days) if args.days > 0 else None
    engine = store.connect(url)
    try:
        counts = by_reason(engine, since=since, sending_side_only=not args.all)
    finally:
        engine.dispose()
    if args.json:
        for count in counts:
            print(json.dumps(count.as_dict()))
        return ExitCode.OK
    if not counts:
        print("no sending-side failures recorded" if not args.all else "no failures recorded")
    for c in counts:
        domains = ", ".join(f"{domain} {n}" for domain, n in c.domains)
        print(f"{c.reason} ({c.kind}): {c.failures} failures to {c.addresses} addresses, {c.first:%Y-%m-%d} to "
              f"{c.last:%Y-%m-%d}; domains: {domains}")
        if c.example:
            print(f"    latest: {c.example[:200]}")
    return ExitCode.OK
