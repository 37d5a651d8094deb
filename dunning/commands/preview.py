"""`dunning preview --out DIR`: an offline gallery of every notice, locale and sample scenario."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dunning.errors import ExitCode
from dunning.i18n.workflow import display_path
from dunning.logs import note
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "preview"
HELP = "write an offline gallery (index.html + one .eml per email) of every notice, locale and scenario"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("var/preview"), metavar="DIR",
                        help="directory to write the gallery into (default: var/preview)")


def run(args: argparse.Namespace) -> int:
    from dunning.emails.limits import RenderLimits
    from dunning.emails.preview import Entry, build_preview  # needs the renderer; other commands must not

    settings = load_settings(args.settings)
    entries = build_preview(Path(settings.i18n.templates_dir), Path(settings.i18n.locales_dir), args.out,
                            sender=settings.sender, default_locale=settings.i18n.default_locale,
                            limits=RenderLimits.of(settings))
    failed = [entry for entry in entries if entry.error]
    alike: dict[str | None, list[Entry]] = {}
    for entry in failed:  # a template out of time fails all its emails alike: one line says it
        alike.setdefault(entry.error, []).append(entry)
    for error, group in alike.items():
        first, more = group[0], f" (and {len(group) - 1} more emails)" if len(group) > 1 else ""
        note(f"{first.notice} {first.locale} {first.scenario}: {error}{more}", level=logging.ERROR,
             event="preview_failed", notice=first.notice)
    print(f"wrote {len(entries) - len(failed)} of {len(entries)} emails; open "
          f"{display_path(args.out / 'index.html')}")
    return ExitCode.FAILED if failed else ExitCode.OK
