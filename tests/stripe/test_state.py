"""The sync's state in the store, on SQLite and PostgreSQL: the event cursor and the events applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dunning import store
from dunning.sources.stripe import state

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_the_cursor_is_kept_and_replaced(database_url: str) -> None:
    """No cursor before the first sync; then the latest one written."""
    engine = store.connect(database_url)
    assert state.read_cursor(engine) is None
    state.write_cursor(engine, 1_796_600_000)
    state.write_cursor(engine, 1_796_600_100)
    assert state.read_cursor(engine) == 1_796_600_100
    engine.dispose()


def test_events_applied_are_remembered_twice_harmlessly_and_forgotten_after_stripe_drops_them(
        database_url: str) -> None:
    """mark_seen twice is harmless; unseen filters; events older than twice Stripe's retention are dropped."""
    engine = store.connect(database_url)
    state.mark_seen(engine, ["evt_old"], NOW - 2 * state.EVENT_RETENTION - timedelta(days=1))
    state.mark_seen(engine, ["evt_1", "evt_2"], NOW)
    state.mark_seen(engine, ["evt_2"], NOW)
    assert state.unseen(engine, ["evt_1", "evt_2", "evt_3", "evt_old"]) == {"evt_3", "evt_old"}
    assert state.is_seen(engine, "evt_1") and not state.is_seen(engine, "evt_3")
    engine.dispose()
