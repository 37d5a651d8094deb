"""The `dunning` command: builds the parser from dunning.commands and turns errors into exit codes."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import dunning.commands
from dunning import logs
from dunning.errors import DunningError, ExitCode, OutputClosed, exit_code_for
from dunning.version import __version__

__all__ = ["command_modules", "command_name", "command_word", "build_parser", "CommandParser", "main"]

log = logging.getLogger("dunning")


def command_modules(word: str | None = None) -> list[ModuleType]:
    """The module of the subcommand `word` alone when there is one, else every subcommand's, in name order.

    A command's module is named after it (`capture_server` for capture-server, `import_` for import):
    a run imports what it uses, not what every other command needs.
    """
    names = sorted(info.name for info in pkgutil.iter_modules(dunning.commands.__path__)
                   if not info.name.startswith("_"))
    chosen = [name for name in names if command_name(name) == word]
    return [importlib.import_module(f"dunning.commands.{name}") for name in chosen or names]


def command_name(module_name: str) -> str:
    """The subcommand a module of dunning.commands defines, by the naming rule above."""
    return module_name.rstrip("_").replace("_", "-")


def command_word(argv: list[str]) -> str | None:
    """The first word of the command line that is not an option or the value of --settings or --log-format."""
    words = iter(argv)
    for word in words:
        if word in ("--settings", "--log-format"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(word: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of `word` alone when it names one."""
    parser = _Parser(
        prog="dunning", allow_abbrev=False,  # an abbreviated --settings would hide the command word
        description="Tell customers, in their own language, that a payment needs their attention.")
    parser.add_argument("--version", action="version", version=f"dunning {__version__}")
    add_global_options(parser, defaults=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=CommandParser)
    for module in command_modules(word):
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.configure(sub)
        sub.set_defaults(handler=module.run)
    return parser


class _Parser(argparse.ArgumentParser):
    """A parser that stores itself in the arguments it parses, to report errors with its own usage.

    add_subparsers makes the parsers of (sub)subcommands of the parser's own class.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(usage_parser=self)


def add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--settings, -v and --log-format; a subcommand's copies have no defaults, so as not to undo the
    value given before the subcommand."""
    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--settings", type=Path, metavar="FILE", default=default(None),
                        help="settings file (default: $DUNNING_SETTINGS, else ./settings.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", default=default(False), help="log debug details")
    parser.add_argument("--log-format", choices=logs.LOG_FORMATS, default=default("text"),
                        help="log lines on stderr as text (default), or as one JSON object per line for a log "
                             "shipper (ids only, never names or addresses)")


class CommandParser(_Parser):
    """A subcommand's parser: the global options are taken after the subcommand's words too (argparse makes
    the parsers of sub-subcommands of the same class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_global_options(self, defaults=False)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The parsed command line; an unknown option is reported with the usage of the subcommand it was given to."""
    parser = build_parser(command_word(argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        getattr(args, "usage_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run one command; the only place where exceptions become exit codes."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_arguments(argv)
    logs.configure(args.log_format, verbose=args.verbose)
    # aiosmtpd logs every SMTP command of the capture server at INFO.
    logging.getLogger("mail.log").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    # The stripe library logs every request at INFO.
    logging.getLogger("stripe").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    # A connection found lost is logged by the pool with a traceback; the command's own line says it.
    logging.getLogger("sqlalchemy.pool").setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    try:
        try:
            return int(args.handler(args) or 0)
        except BrokenPipeError:
            raise OutputClosed("the output was closed before the end (broken pipe)") from None
    except DunningError as exc:
        if isinstance(exc, OutputClosed):
            # Python would complain again while flushing the closed pipe at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return complain(args, f"error: {exc}", exit_code_for(exc))
    except KeyboardInterrupt:
        return complain(args, "interrupted", ExitCode.INTERRUPTED)
    except Exception as exc:
        from dunning.store.failures import known_failure  # loaded only when a command fails
        known = known_failure(exc)
        if known is not None:
            return complain(args, f"error: {known}", exit_code_for(known))
        log.exception("internal error in %s", args.command, extra={"command": args.command})
        return complain(args, "internal error (see the traceback above); please report it", ExitCode.INTERNAL)


def complain(args: argparse.Namespace, text: str, code: ExitCode) -> int:
    """Say why the command ends: a line for people, or a JSON log line when logs are JSON; the exit code."""
    if args.log_format == "json":
        log.error("dunning %s: %s", args.command, text, extra={"command": args.command, "exit_code": int(code)})
    else:
        print(f"dunning {args.command}: {text}", file=sys.stderr)
    return int(code)
