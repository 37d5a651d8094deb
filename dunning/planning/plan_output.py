"""A plan as the contract's JSON array or as a table for people, written batch by batch (never held whole)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from typing import Any, TextIO

from babel.numbers import get_currency_precision
from rich.console import Console
from rich.text import Text

from dunning.planning.policy import PlannedNotice
from dunning.vocabulary import PLAN_STATUSES

__all__ = ["format_amount", "notice_json", "write_json", "PIPE_WIDTH", "STYLES", "COLUMNS", "table_row", "write_table",
           "summary"]


@cache
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-get_currency_precision(currency))


def format_amount(amount: Decimal, currency: str) -> str:
    """A decimal string with the currency's own number of decimals: "1234.50" EUR, "1500" JPY."""
    return str(amount.quantize(_quantum(currency), rounding=ROUND_HALF_EVEN))


def notice_json(notice: PlannedNotice) -> dict[str, Any]:
    """The contract's object for one planned email; cc, catalog and the locale request are added fields."""
    return {
        "account": notice.account, "notice": notice.notice, "stage": notice.stage,
        "payment_method": notice.payment_method, "status": notice.status,
        "amounts": {currency: format_amount(amount, currency) for currency, amount in sorted(notice.amounts.items())},
        "invoices": sorted(notice.invoices), "subscriptions": sorted(notice.subscriptions),
        "locale": notice.locale, "to": sorted(notice.to), "keys": sorted(notice.keys),
        "cc": sorted(notice.cc), "catalog": notice.catalog, "requested_locale": notice.requested_locale,
        "locale_fallback": notice.locale_fallback,
    }


def write_json(batches: Iterable[list[PlannedNotice]], out: TextIO) -> Counter[str]:
    """Stream the plan as a JSON array, one object per line; returns the count per status."""
    counts: Counter[str] = Counter()
    out.write("[")
    for batch in batches:
        if batch:
            out.write(("," if counts else "") + ",".join(
                "\n" + json.dumps(notice_json(notice), ensure_ascii=False) for notice in batch))
            counts.update(notice.status for notice in batch)
    out.write("\n]\n" if counts else "]\n")
    return counts


PIPE_WIDTH = 200
STYLES = {"send": "green", "deferred": "yellow", "paused": "magenta", "skipped": "dim", "superseded": "dim",
          "suppressed": "red"}
COLUMNS = (("account", 16), ("notice", 18), ("stage", 5), ("amounts", 22), ("status", 10), ("why", 0))
RIGHT_ALIGNED = ("stage", "amounts")


def table_row(notice: PlannedNotice) -> tuple[list[str], ...]:
    """The table's cells for one entry, each a list of lines: one amount per currency, long ids folded."""
    amounts = [f"{c} {format_amount(a, c)}" for c, a in sorted(notice.amounts.items())] or ["-"]
    stage = "" if notice.stage is None else str(notice.stage)
    cells: tuple[str | list[str], ...] = (notice.account, notice.notice, stage, amounts, notice.status, notice.why)
    return tuple(_fold(cell, width) for cell, (_, width) in zip(cells, COLUMNS, strict=True))


def _fold(cell: str | list[str], width: int) -> list[str]:
    """A cell's lines, each cut to the column's width (0: as long as it is), so no column ever shifts."""
    lines = [cell] if isinstance(cell, str) else cell
    if not width:
        return lines
    return [line[i:i + width] for line in lines for i in range(0, max(len(line), 1), width)]


def _lines(cells: tuple[list[str], ...], status: str | None) -> Text:
    rows = []
    for number in range(max(len(cell) for cell in cells)):
        line = Text(no_wrap=True, overflow="ignore")
        for (name, width), cell in zip(COLUMNS, cells, strict=True):
            text = cell[number] if number < len(cell) else ""
            padded = text.rjust(width) if name in RIGHT_ALIGNED else text.ljust(width)
            line.append(padded, style=STYLES[status] if name == "status" and status else "")
            if name != "why":
                line.append("  ")
        line.rstrip()
        rows.append(line)
    return Text("\n").join(rows)


def write_table(batches: Iterable[list[PlannedNotice]], out: TextIO) -> Counter[str]:
    """Print the plan as aligned columns, one line per entry as each batch comes, then a summary line."""
    console = Console(file=out, highlight=False, width=PIPE_WIDTH, soft_wrap=True)
    console.print(_lines(tuple([name] for name, _ in COLUMNS), None), style="bold")
    counts: Counter[str] = Counter()
    for batch in batches:
        if batch:  # one print per batch: rich's per-call cost dominates otherwise
            console.print(Text("\n").join(_lines(table_row(n), n.status) for n in batch))
            counts.update(notice.status for notice in batch)
    console.print(summary(counts))
    return counts


def summary(counts: Counter[str]) -> str:
    """One line: how many entries of each status, e.g. "3 send, 1 deferred, 0 skipped, 0 superseded".

    paused is shown only when some entry is paused: most billing teams never pause anyone."""
    if not counts:
        return "nothing is due"
    # The four statuses of every plan always; the rarer ones (suppressed…) only when some entry has them.
    return ", ".join(f"{counts[status]} {status}" for status in PLAN_STATUSES
                     if status in ("send", "deferred", "skipped", "superseded") or counts[status])
