"""IANA time zones by name, each loaded once per process."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo

__all__ = ["zone"]


@cache  # bounded by the IANA database (a few hundred names)
def zone(name: str) -> ZoneInfo:
    """The zone called name. ZoneInfo's own cache keeps only the 8 most recent zones alive: a run across
    many zones would otherwise read and parse a zone file from disk for most accounts."""
    return ZoneInfo(name)
