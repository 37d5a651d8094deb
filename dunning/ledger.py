"""The notice ledger and outbox: enqueue, claim, record, reconcile. Never twice lives here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from dunning import store


def handled_keys(conn: Connection, account_ids: Sequence[str]) -> set[str]:
    """Every notice key the ledger holds for these accounts."""
    if not account_ids:
        return set()
    query = select(store.notices.c.key).where(store.notices.c.account_id.in_(list(account_ids)))
    return set(conn.execute(query).scalars())
