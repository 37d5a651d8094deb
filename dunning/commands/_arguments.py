"""Argument types shared by several subcommands (a leading underscore: not a subcommand itself)."""

from __future__ import annotations

import argparse
from datetime import datetime

from dunning.billing.contract import parse_moment

__all__ = ["as_of"]


def count(value: str) -> int:
    """A whole number of things: 0 or more."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {number}")
    return number


def port(value: str) -> int:
    """A TCP port: 0 (pick a free one) to 65535."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, got {number}")
    return number


def as_of(value: str) -> datetime:
    """--as-of: an RFC 3339 date-time with its offset, e.g. 2026-11-20T09:00:00Z."""
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (expected e.g. 2026-11-20T09:00:00Z)") from None
