"""Argument types shared by several subcommands (a leading underscore: not a subcommand itself)."""

from __future__ import annotations

import argparse
from datetime import datetime


def as_of(value: str) -> datetime:
    """--as-of: an RFC 3339 date-time with its offset, e.g. 2026-11-20T09:00:00Z."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 date-time: {value!r}") from None
    if "T" not in value.upper() or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a date, a time and an offset, e.g. 2026-11-20T09:00:00Z: "
                                         f"{value!r}")
    return moment
