"""dunning reconcile: emails whose delivery outcome is unknown, marked sent or released by an operator."""

from __future__ import annotations

import argparse
import json

from sqlalchemy import Engine

from dunning import ledger, store
from dunning.errors import ExitCode, ReconcileError
from dunning.logs import note
from dunning.run.clock import SYSTEM_CLOCK
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "reconcile"
HELP = "list emails whose delivery is unknown; mark them sent, or release them to be sent again"



def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true",
                        help="list the unknown emails (the default when nothing else is asked)")
    parser.add_argument("--mark-sent", type=int, nargs="+", default=[], metavar="ID",
                        help="these emails were delivered: record them as sent, never to be sent again")
    parser.add_argument("--release", type=int, nargs="+", default=[], metavar="ID",
                        help="these emails were not delivered: queue them for the next run, same Message-ID")
    parser.add_argument("--refused", action="store_true",
                        help="list the recipients refused for good (5xx), email by email")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    engine = store.connect(load_settings(args.settings).database.url)
    if args.mark_sent or args.release:
        _check(engine, args.mark_sent, args.release)
        marked = ledger.mark_sent(engine, args.mark_sent, now=SYSTEM_CLOCK.now()) if args.mark_sent else 0
        released = ledger.release(engine, args.release, now=SYSTEM_CLOCK.now()) if args.release else 0
        done = {"marked_sent": sorted(set(args.mark_sent)), "released": sorted(set(args.release))}
        print(json.dumps(done) if args.json else f"{marked} marked sent, {released} released")
    if args.refused:
        _show_refused(ledger.list_refused(engine), as_json=args.json)
    elif args.list or not (args.mark_sent or args.release):
        _show(ledger.list_unknown(engine), as_json=args.json)
        refused = ledger.list_refused(engine)
        if refused and not args.json:
            _show_refused(refused, as_json=False)
    return ExitCode.OK


def _show_refused(refused: list[ledger.RefusedRecipient], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"id": r.email_id, "account": r.account, "notice": r.notice, "status": r.status,
                           "recipient": r.recipient, "code": r.code, "reply": r.reply} for r in refused], indent=2))
        return
    for r in refused:
        print(f"{r.email_id}	{r.account}	{r.notice}	{r.status}	refused {r.recipient}: {r.code} {r.reply}")
    if refused:
        note(f"{len(refused)} recipients refused for good (5xx): correct the addresses in the billing system",
             event="recipients_refused", count=len(refused))


def _check(engine: Engine, mark_sent: list[int], release: list[int]) -> None:
    """Refuse the whole request, changing nothing, if any id is not an unknown email."""
    both = set(mark_sent) & set(release)
    if both:
        raise ReconcileError(f"cannot both mark sent and release email {_ids(both)}; nothing changed")
    unknown = {email.email_id for email in ledger.list_unknown(engine)}
    missing = (set(mark_sent) | set(release)) - unknown
    if missing:
        raise ReconcileError(f"email {_ids(missing)}: no such email, or its outcome is already known "
                             "(see `dunning reconcile --list`); nothing changed")


def _show(unknown: list[ledger.UnknownEmail], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"id": email.email_id, "account": email.account, "notice": email.notice,
                           "keys": list(email.keys), "message_id": email.message_id,
                           "since": email.since.isoformat(), "resent": email.resent, "error": email.error}
                          for email in unknown], indent=2))
        return
    if not unknown:
        print("no emails with an unknown outcome")
        return
    for email in unknown:
        print(f"{email.email_id}\t{email.account}\t{email.notice}\t{' '.join(email.keys)}\t"
              f"{email.message_id}\tsince {email.since.isoformat(timespec='seconds')}")
    note(f"{len(unknown)} unknown: after checking the mail server's logs for each Message-ID, "
         "run `dunning reconcile --mark-sent ID…` or `--release ID…`", event="unknown", count=len(unknown))


def _ids(ids: set[int]) -> str:
    return ", ".join(str(i) for i in sorted(ids))
