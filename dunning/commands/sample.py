"""dunning sample: write realistic billing state as JSON Lines."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dunning.billing import sample
from dunning.commands._arguments import as_of, count
from dunning.errors import ExitCode
from dunning.logs import note

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "sample"
HELP = "write sample billing state (JSON Lines) covering every notice situation"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accounts", type=count, default=60, help="how many accounts (default 60)")
    parser.add_argument("--as-of", type=as_of, metavar="RFC3339",
                        help="the moment the data is dated against (default: now)")
    parser.add_argument("--mix", choices=["mixed", "all-due", "none-due"], default="mixed",
                        help="mixed situations, every account due for a notice, or nothing due")
    parser.add_argument("--seed", type=int, default=7,
                        help="random seed: the same seed, count and moment give the same data (default 7)")
    parser.add_argument("--any-timezone", action="store_true",
                        help="use every time zone, even where it is outside the send window at --as-of")
    parser.add_argument("--settled", action="store_true",
                        help="the same accounts once the payments of the settling situations came in (their "
                             "invoices paid): import it after a run to see balance_settled")
    parser.add_argument("--out", type=Path, help="file to write (default: standard output)")


def run(args: argparse.Namespace) -> int:
    accounts = sample.generate(args.accounts, args.as_of or sample.as_of_default(), seed=args.seed,
                               mix=args.mix, in_window=not args.any_timezone, settled=args.settled)
    if args.out is None:
        sample.write_jsonl(sys.stdout, accounts)
        return ExitCode.OK
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as out:
        written = sample.write_jsonl(out, accounts)
    note(f"wrote {written} accounts to {args.out}", level=logging.INFO, event="sample_written", count=written)
    return ExitCode.OK
