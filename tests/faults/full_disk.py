"""A disk that fills while a run writes, as the run's own calls meet it: the flight log's os.write fails with
ENOSPC, SQLite's writes with the error SQLite gives ("database or disk is full"), until room is made.

The state lives in shared memory, so that the delivery processes a run forks meet the same full disk.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import sqlite3
import stat
from typing import Any

__all__ = ["Disk", "full_sqlite"]

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
real_write, real_open, real_connect = os.write, os.open, sqlite3.dbapi2.connect


class Disk:
    """Whether the disk is full (shared with forked processes), and how many times it filled."""

    def __init__(self) -> None:
        self._full = multiprocessing.RawValue("b", 0)
        self.fills = 0

    @property
    def full(self) -> bool:
        return bool(self._full.value)

    def fill(self) -> None:
        """No room left from now on."""
        if not self.full:
            self.fills += 1
        self._full.value = 1

    def free(self) -> None:
        """Room again ("space freed")."""
        self._full.value = 0

    def write(self, fd: int, data: Any) -> int:
        """os.write: to a file, ENOSPC while the disk is full (pipes and sockets are not on it)."""
        if self.full and stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        """os.open: a file created while the disk is full is not."""
        if self.full and flags & os.O_CREAT and not os.path.exists(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def statement(self, sql: str) -> None:
        """Before SQLite runs a statement: one that writes fails while the disk is full, as SQLite fails it."""
        if self.full and sql.lstrip().upper().startswith(_WRITES):
            raise sqlite3.OperationalError("database or disk is full")


def full_sqlite(disk: Disk) -> Any:
    """sqlite3.connect, whose connections run every statement past the disk first (SQLAlchemy's and the
    ones the ledger runs on the driver's own cursor)."""
    class Cursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = (), /) -> Any:
            disk.statement(sql)
            return super().execute(sql, parameters)

        def executemany(self, sql: str, parameters: Any, /) -> Any:
            disk.statement(sql)
            return super().executemany(sql, parameters)

    class Connection(sqlite3.Connection):
        def cursor(self, factory: Any = Cursor) -> Any:
            return super().cursor(factory)

        def execute(self, sql: str, parameters: Any = (), /) -> Any:
            return self.cursor().execute(sql, parameters)

        def executemany(self, sql: str, parameters: Any, /) -> Any:
            return self.cursor().executemany(sql, parameters)

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return real_connect(*args, **kwargs, factory=Connection)

    return connect
