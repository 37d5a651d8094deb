"""dunning import FILE: billing state as JSON Lines into the store."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import BinaryIO

from dunning import store
from dunning.billing import importer
from dunning.commands._arguments import as_of
from dunning.errors import DunningError, ExitCode
from dunning.logs import note
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "SHOWN_WARNINGS", "configure", "run"]

NAME = "import"
HELP = "import billing state (JSON Lines, one account per line) into the store"
SHOWN_WARNINGS = 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="JSON Lines file, or - for standard input")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--as-of", type=as_of, metavar="RFC3339",
                        help="the moment the balance changes it brings happened, for the report (default: now)")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    engine = store.connect(settings.database.url)
    say = partial(_say, as_json=args.log_format == "json")
    shown = 0

    def warn(error: DunningError) -> None:
        nonlocal shown
        shown += 1
        if shown <= SHOWN_WARNINGS:
            say("warning", error)

    with _open(args.file) as stream:
        summary = importer.import_stream(
            engine, stream, batch_size=settings.database.batch_size,
            max_line_bytes=settings.database.max_line_bytes,
            on_error=partial(say, "rejected"), on_warning=warn, as_of=args.as_of)
    if shown > SHOWN_WARNINGS:
        say("warning", f"{shown - SHOWN_WARNINGS} more warnings not shown")
    counts = summary.as_dict()
    print(json.dumps(counts) if args.json else
          ", ".join(f"{value} {name}" for name, value in counts.items()))
    return ExitCode.DATA if summary.rejected else ExitCode.OK


def _say(kind: str, error: DunningError | str, *, as_json: bool) -> None:
    """A rejected line or a warning: a line on stderr for people, or one JSON log event with its ids."""
    fields = {name: getattr(error, name) for name in ("line", "account", "field", "reason")
              if getattr(error, name, None) is not None}
    note(f"{kind}: {error}", logger="dunning.import", event=f"import_{kind}", **fields)


def _open(path: Path) -> BinaryIO:
    if str(path) == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False)
    try:
        return path.open("rb")
    except OSError as exc:
        raise DunningError(f"cannot read {path}: {exc.strerror}") from None
