"""The steps SQLite plans for the statements a piece of code runs: how a test sees a query walk a whole index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event


def table_steps(engine: Engine, call: Callable[[], Any]) -> list[list[str]]:
    """Run call; for each statement it executed on engine, the SEARCH and SCAN steps of its plan over tables."""
    statements: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    with engine.connect() as conn:
        plans = [[row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
                 for statement, parameters in statements]
    return [[step for step in plan if step.startswith(("SEARCH", "SCAN")) and "VIRTUAL TABLE" not in step]
            for plan in plans]
