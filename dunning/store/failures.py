"""Failures that are conditions of the machine, not bugs: a full or failing disk, a lost database connection
or server, a file that is not a database. Each becomes the project's error, for one line and its exit code."""

from __future__ import annotations

import errno

from dunning.errors import DatabaseUnavailable, DunningError, SettingsError, StorageFailed

__all__ = ["STORAGE_ERRNOS", "DISK_FULL", "known_failure"]

STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG})
_DRIVERS = ("sqlalchemy", "sqlite3", "psycopg")
DISK_FULL = "53100"  # PostgreSQL's SQLSTATE for a server whose disk is full


def known_failure(exc: BaseException) -> DunningError | None:
    """The project's error for an exception that is not a bug; None for any other."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        where = f" ({exc.filename})" if exc.filename else ""
        return StorageFailed(f"cannot write or read{where}: {exc.strerror or exc}")
    if type(exc).__module__.split(".")[0] not in _DRIVERS:
        return None
    cause = getattr(exc, "orig", None) or exc
    text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    lowered, kinds = text.lower(), {kind.__name__ for kind in type(cause).__mro__}
    full = getattr(cause, "sqlstate", None) == DISK_FULL or "no space left on device" in lowered
    if full or "disk is full" in lowered or "disk i/o error" in lowered:
        return StorageFailed(f"the database cannot be written: {text}")
    if "not a database" in lowered or "malformed" in lowered:
        return SettingsError(f"database.url: the file is not a usable SQLite database: {text}")
    if kinds & {"OperationalError", "InterfaceError"}:
        return DatabaseUnavailable(f"the database connection was lost: {text}")
    return None
