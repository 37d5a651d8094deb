"""What a Stripe sync keeps in the store between runs: its event cursor and the events already applied."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select

from dunning import store

__all__ = ["SOURCE", "CURSOR_KEY", "EVENT_RETENTION", "read_cursor", "write_cursor", "unseen", "mark_seen",
           "is_seen"]

SOURCE = "stripe"
CURSOR_KEY = "stripe.event_cursor"
# Stripe lists the events of the last 30 days: an older cursor cannot be followed, a full pass is needed.
EVENT_RETENTION = timedelta(days=30)


def read_cursor(engine: Engine) -> int | None:
    """The Unix time from which the next incremental sync reads events, if a sync ever ran."""
    with engine.connect() as conn:
        value = conn.execute(select(store.source_state.c.value)
                             .where(store.source_state.c.key == CURSOR_KEY)).scalar()
    return int(value) if value is not None else None


def write_cursor(engine: Engine, created: int) -> None:
    """Remember where the next incremental sync starts."""
    with engine.begin() as conn:
        statement = store.backend_of(conn).insert(store.source_state).values(key=CURSOR_KEY, value=str(created))
        conn.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": str(created)}))


def unseen(engine: Engine, event_ids: list[str]) -> set[str]:
    """Those of the event ids not applied yet."""
    seen: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            seen.update(conn.execute(select(store.source_events.c.id)
                                     .where(store.source_events.c.id.in_(chunk))).scalars())
    return set(event_ids) - seen


def is_seen(engine: Engine, event_id: str) -> bool:
    """Whether this event was applied already."""
    return not unseen(engine, [event_id])


def mark_seen(engine: Engine, event_ids: Iterable[str], now: datetime) -> None:
    """Record events as applied (again is harmless), and forget those older than Stripe keeps."""
    rows = [{"id": event_id, "source": SOURCE, "seen_at": now} for event_id in event_ids]
    with engine.begin() as conn:
        if rows:
            statement = store.backend_of(conn).insert(store.source_events)
            conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]), rows)
        conn.execute(delete(store.source_events).where(store.source_events.c.seen_at < now - 2 * EVENT_RETENTION))
