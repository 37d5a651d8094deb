"""`dunning i18n extract | update | compile | stats`: the translation workflow."""

from __future__ import annotations

import argparse
from pathlib import Path

import dunning
from dunning.errors import ExitCode, SettingsError
from dunning.i18n import workflow
from dunning.i18n.workflow import display_path
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "i18n"
HELP = "extract messages, merge them into each locale's catalog, compile catalogs, show coverage"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("extract", help="write locales/messages.pot from the templates and the code")
    actions.add_parser("update", help="merge messages.pot into every locale's messages.po")
    actions.add_parser("compile", help="write messages.mo; refuses a translation that breaks a placeholder")
    actions.add_parser("stats", help="per-locale coverage: translated, fuzzy, missing")


def run(args: argparse.Namespace) -> int:
    i18n = load_settings(args.settings).i18n
    templates_dir, locales_dir = Path(i18n.templates_dir), Path(i18n.locales_dir)
    if args.action != "stats":
        refuse_installed(locales_dir)
    if args.action == "extract":
        return _extract(templates_dir, locales_dir)
    if args.action == "update":
        return _update(locales_dir)
    if args.action == "compile":
        for path in workflow.compile_catalogs(locales_dir):
            print(f"compiled {display_path(path)}")
        return ExitCode.OK
    print(workflow.format_stats(workflow.stats(locales_dir)))
    return ExitCode.OK


def refuse_installed(locales_dir: Path) -> None:
    """extract, update and compile write catalogs: never into the installed package's own copies."""
    package = Path(dunning.__file__).resolve().parent
    if locales_dir.resolve().is_relative_to(package):
        raise SettingsError(f"i18n.locales_dir: {locales_dir} holds the catalogs installed with dunning, which "
                            "an upgrade replaces; make a project with copies of your own (`dunning init DIR`) "
                            "and run this command there")


def _extract(templates_dir: Path, locales_dir: Path) -> int:
    catalog = workflow.extract(templates_dir, root=locales_dir.parent)
    path = workflow.write_pot(catalog, locales_dir)
    print(f"extracted {sum(1 for m in catalog if m.id)} messages into {display_path(path)}")
    return ExitCode.OK


def _update(locales_dir: Path) -> int:
    template = workflow.read_pot(locales_dir)
    for result in workflow.update(locales_dir, template):
        print(f"updated {display_path(result.path)}: {result.added} new, {result.fuzzy} newly fuzzy, "
              f"{result.obsolete} obsolete")
    return ExitCode.OK
