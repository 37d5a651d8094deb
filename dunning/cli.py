"""The `dunning` command: builds the parser from dunning.commands and turns errors into exit codes."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

import dunning
import dunning.commands
from dunning.errors import DunningError

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70  # EX_SOFTWARE


def command_modules() -> list[ModuleType]:
    """Every module of dunning.commands that defines a subcommand, in name order."""
    names = sorted(info.name for info in pkgutil.iter_modules(dunning.commands.__path__)
                   if not info.name.startswith("_"))
    return [importlib.import_module(f"dunning.commands.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dunning",
        description="Tell customers, in their own language, that a payment needs their attention.")
    parser.add_argument("--version", action="version", version=f"dunning {dunning.__version__}")
    parser.add_argument("--settings", type=Path, metavar="FILE",
                        help="settings file (default: $DUNNING_SETTINGS, else ./settings.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in command_modules():
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.configure(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the only place where exceptions become exit codes."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # aiosmtpd logs every SMTP command of the capture server at INFO.
    logging.getLogger("mail.log").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except DunningError as exc:
        print(f"dunning {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"dunning {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        logging.getLogger("dunning").exception("internal error in %s", args.command)
        print(f"dunning {args.command}: internal error (see the traceback above); please report it",
              file=sys.stderr)
        return EXIT_INTERNAL
