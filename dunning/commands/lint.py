"""`dunning lint`: check every template, catalog and rendered email; exit non-zero on any error."""

from __future__ import annotations

import argparse
from pathlib import Path

from dunning.emails import lint
from dunning.emails.limits import RenderLimits
from dunning.emails.lint_tree import lint_tree
from dunning.errors import ExitCode
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "lint"
HELP = "check templates, translations and every rendered email; exit 1 on any error"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-render", action="store_true",
                        help="only the static checks of templates and catalogs")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    i18n = settings.i18n
    problems = lint_tree(Path(i18n.templates_dir), Path(i18n.locales_dir), default_locale=i18n.default_locale,
                         render=not args.no_render, limits=RenderLimits.of(settings))
    for problem in problems:
        print(problem)
    errors, warnings = lint.count(problems)
    print(f"{errors} error(s), {warnings} warning(s)")
    return ExitCode.FAILED if errors else ExitCode.OK
