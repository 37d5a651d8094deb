"""dunning suppressions: the addresses never mailed again after bounces, and the accounts left unreachable."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import re

from sqlalchemy import Engine

from dunning import store
from dunning.bounces import suppressions
from dunning.errors import ExitCode, SuppressionError
from dunning.planning.plan_output import format_amount
from dunning.run.clock import SYSTEM_CLOCK
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

log = logging.getLogger("dunning.suppressions")

NAME = "suppressions"
HELP = "list, add or remove suppressed addresses; list the accounts due for dunning with no reachable contact"

_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+\Z")


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("list", help="the suppressed addresses, with who suppressed them, when and why")
    show.add_argument("--accounts", action="store_true",
                      help="instead, the accounts that owe money and have no address left to mail, with the "
                           "balance: someone should call them")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add = actions.add_parser("add", help="suppress addresses by hand")
    add.add_argument("addresses", nargs="+", metavar="ADDRESS", help="the email addresses never to mail again")
    add.add_argument("--reason", help="why (kept with the suppression)")
    add.add_argument("--by", help="who (default: the user running the command)")
    remove = actions.add_parser("remove", help="lift suppressions (the customer fixed the address): the next "
                                               "notice goes out")
    remove.add_argument("addresses", nargs="+", metavar="ADDRESS",
                        help="the email addresses to mail again (the customer fixed their mailbox)")
    remove.add_argument("--reason", help="why (logged)")
    for sub in (add, remove):
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    if args.action in ("add", "remove"):
        _check_addresses(args.addresses)
    engine = store.connect(settings.database.url)
    try:
        if args.action == "list":
            _show_accounts(engine, args.json) if args.accounts else _show(engine, args.json)
        elif args.action == "add":
            by = args.by or getpass.getuser()
            added = suppressions.add(engine, args.addresses, reason=args.reason, by=by, now=SYSTEM_CLOCK.now())
            print(json.dumps({"added": added}) if args.json else f"{len(added)} addresses suppressed")
        else:
            return _remove(engine, args)
    finally:
        engine.dispose()
    return ExitCode.OK


def _check_addresses(addresses: list[str]) -> None:
    """Refuse the whole request, changing nothing, if any argument is not an address."""
    bad = [a for a in addresses if not _utf8(a) or not _ADDRESS.match(a.strip())]
    if bad:
        raise SuppressionError(f"not an email address: {', '.join(repr(a) for a in bad)}; nothing changed")


def _utf8(argument: str) -> bool:
    """Whether an argument was given as UTF-8 (bytes that are not come in as lone surrogates)."""
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _remove(engine: Engine, args: argparse.Namespace) -> int:
    wanted = {suppressions.normalize(a) for a in args.addresses}
    held = {s.address for s in suppressions.list_suppressions(engine)}
    missing = sorted(wanted - held)
    if missing:
        raise SuppressionError(f"not suppressed: {', '.join(missing)}; nothing changed")
    removed = suppressions.remove(engine, args.addresses)
    log.info("%d suppressions lifted by %s: %s", len(removed), getpass.getuser(), args.reason or "no reason given")
    print(json.dumps({"removed": removed}) if args.json else f"{len(removed)} suppressions lifted")
    return ExitCode.OK


def _show(engine: Engine, as_json: bool) -> None:
    found = suppressions.list_suppressions(engine)
    if as_json:
        print(json.dumps([{"address": s.address, "reason": s.reason, "detail": s.detail, "account": s.account,
                           "email_id": s.email_id, "by": s.created_by, "since": s.created_at.isoformat()}
                          for s in found], indent=2))
        return
    if not found:
        print("no suppressed addresses")
    for s in found:
        print(f"{s.address}\t{s.reason}\t{s.account or '-'}\t{s.created_at.isoformat(timespec='seconds')}\t"
              f"by {s.created_by}\t{s.detail or ''}")


def _show_accounts(engine: Engine, as_json: bool) -> None:
    found = suppressions.unreachable_accounts(engine)
    if as_json:
        print(json.dumps([{"account": a.account, "name": a.name, "addresses": list(a.addresses),
                           "balance": {c: format_amount(v, c) for c, v in a.balance.items()}} for a in found], indent=2,
                         ensure_ascii=False))
        return
    if not found:
        print("every account that owes money has an address to mail")
    for a in found:
        balance = ", ".join(f"{c} {format_amount(v, c)}" for c, v in a.balance.items())
        print(f"{a.account}\t{a.name}\t{balance}\t{' '.join(a.addresses)}")
