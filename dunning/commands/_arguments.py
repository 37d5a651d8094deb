"""Argument types shared by several subcommands (a leading underscore: not a subcommand itself)."""

from __future__ import annotations

import argparse
from datetime import datetime

from dunning.billing.contract import parse_moment

__all__ = ["as_of"]


def as_of(value: str) -> datetime:
    """--as-of: an RFC 3339 date-time with its offset, e.g. 2026-11-20T09:00:00Z."""
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (expected e.g. 2026-11-20T09:00:00Z)") from None
