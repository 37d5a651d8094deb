"""dunning init DIR: a project of one's own (settings, templates, catalogs) to edit and run from."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from dunning.errors import ExitCode
from dunning.project import create_project

NAME = "init"
HELP = "make a project folder: commented settings.toml, templates/emails/ and locales/ to edit, var/, README"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, metavar="DIR", help="the folder to create (may exist if empty)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite files that exist already (default: refuse and write nothing)")


def run(args: argparse.Namespace) -> int:
    files = create_project(args.folder, force=args.force)
    print(f"wrote {len(files)} files into {args.folder}/: settings.toml, README.md, templates/emails/, "
          "locales/, var/")
    print("next:")
    print(f"  cd {shlex.quote(str(args.folder))}")
    print("  dunning demo      # the whole job on sample data, with a local capture SMTP server")
    print("  dunning lint      # check the templates and catalogs after editing them")
    print("then read README.md there")
    return ExitCode.OK
