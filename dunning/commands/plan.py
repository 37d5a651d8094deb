"""dunning plan: which notices a run would handle at a moment, without sending or recording anything."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy import Engine, literal, select

from dunning import store
from dunning.commands._arguments import as_of
from dunning.errors import ExitCode
from dunning.i18n import catalogs
from dunning.logs import note
from dunning.planning import candidates, plan_output
from dunning.run.clock import SYSTEM_CLOCK
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "plan"
HELP = "show which notices a run would send, defer, skip or supersede (nothing is sent or recorded)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=as_of, metavar="RFC3339",
                        help="plan as at this moment (default: now)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="table for people (default), or the JSON array of the policy contract")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    engine = store.connect(settings.database.url)
    as_of = args.as_of or SYSTEM_CLOCK.now()
    locales = catalogs.find_locales(Path(settings.i18n.locales_dir))
    write = plan_output.write_json if args.format == "json" else plan_output.write_table
    try:
        counts = write(candidates.iter_plan(engine, as_of, settings, locales), sys.stdout)
        sys.stdout.flush()
        if not counts and _empty(engine):
            note("dunning plan: the store holds no accounts yet: load the billing state with "
                 "`dunning import FILE` (or `dunning sample` for sample data)", event="store_empty")
    except BrokenPipeError:  # `dunning plan | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        engine.dispose()
    return ExitCode.OK


def _empty(engine: Engine) -> bool:
    """Whether the store holds no account at all."""
    with engine.connect() as conn:
        return conn.execute(select(literal(1)).select_from(store.accounts).limit(1)).first() is None
