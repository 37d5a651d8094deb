"""`dunning report`: what the emails recovered, as JSON or as one self-contained HTML file."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from dunning import store
from dunning.errors import ExitCode, OutputError
from dunning.report.build import build_report
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run", "overall_line", "write_report"]

NAME = "report"
HELP = "what the emails recovered: sent, clicked, settled and the money, by notice, language, segment and week"


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", type=_day, metavar="DATE",
                        help="count the emails sent from this day on (UTC; default: the first)")
    parser.add_argument("--to", dest="end", type=_day, metavar="DATE",
                        help="count the emails sent up to this day, included (UTC; default: the last)")
    parser.add_argument("--format", choices=("json", "html"), default="json", help="json (default) or html")
    parser.add_argument("--out", type=Path, metavar="PATH",
                        help="write the report to this file (default: standard output)")


def run(args: argparse.Namespace) -> int:
    if args.start and args.end and args.start > args.end:
        args.usage_parser.error("--from must not be after --to")
    settings = load_settings(args.settings)
    report = build_report(store.connect(settings.database.url), window_days=settings.report.window_days,
                          start=args.start, end=args.end)
    write_report(report, args.format, args.out)
    if args.out is not None:
        print(f"{overall_line(report['overall'])}: {args.out}", file=sys.stderr)
    return ExitCode.OK


def overall_line(overall: dict[str, Any]) -> str:
    """The overall figures in one line: sent, clicked, settled, recovered."""
    recovered = ", ".join(f"{amount} {currency}" for currency, amount in overall["recovered"].items()) or "nothing"
    return (f"{overall['sent']} emails sent, {overall['clicked']} clicked, {overall['settled']} settled, "
            f"{recovered} recovered")


def write_report(report: dict[str, Any], form: str, out: Path | None) -> None:
    """The report as JSON or HTML, to the file or to standard output."""
    if form == "html":
        from dunning.report.html import render_html  # pygal loads only for an HTML report

        text = render_html(report)
    else:
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the report to {out}: {exc.strerror}", path=str(out)) from None
