"""The balance history: each group's balance read before and after an import, and a dated row when it changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import orjson
from sqlalchemy import Connection, and_, select

from dunning import store

__all__ = ["GroupBalance", "read_balances", "record_changes"]

Group = tuple[str, str]  # account id, payment method id


@dataclass(frozen=True, slots=True)
class GroupBalance:
    """A group's balance per currency (nothing owed: empty) and whether it has a live subscription."""

    amounts: dict[str, Decimal]
    live: bool


def read_balances(conn: Connection, account_ids: Sequence[str]) -> dict[Group, GroupBalance]:
    """The balance of every group of these accounts, as the store holds it now."""
    if not account_ids:
        return {}
    subs, invoices = store.subscriptions, store.invoices
    live = subs.c.status != "cancelled"
    found: dict[Group, GroupBalance] = {}
    for account, method, status in conn.execute(select(subs.c.account_id, subs.c.payment_method_id, subs.c.status)
                                                .where(store.among(conn, subs.c.account_id, account_ids))):
        known = found.get((account, method))
        found[account, method] = GroupBalance({}, status != "cancelled" or bool(known and known.live))
    # Owed is tested here, not in the WHERE: with it there, SQLite walks the (owed, due_date, account_id)
    # index over every owed invoice of the store for each batch, rather than the accounts' own invoices.
    rows = conn.execute(select(subs.c.account_id, subs.c.payment_method_id, invoices.c.currency, invoices.c.total,
                               invoices.c.amount_paid, invoices.c.owed)
                        .join(subs, and_(subs.c.id == invoices.c.subscription_id,
                                         subs.c.account_id == invoices.c.account_id))
                        .where(store.among(conn, invoices.c.account_id, account_ids), live))
    for account, method, currency, total, paid, owed in rows:
        if not owed:
            continue
        amounts = found[account, method].amounts
        amounts[currency] = amounts.get(currency, Decimal(0)) + Decimal(total) - Decimal(paid)
    return found


def record_changes(conn: Connection, before: dict[Group, GroupBalance], after: dict[Group, GroupBalance],
                   changed_at: datetime) -> int:
    """Write a history row for every group whose balance or liveness changed; how many were written."""
    rows = []
    for group in sorted(before.keys() | after.keys()):
        old, new = before.get(group), after.get(group, GroupBalance({}, False))
        if old is not None and old == new or old is None and not new.amounts:
            continue
        rows.append({"account_id": group[0], "payment_method_id": group[1], "live": new.live,
                     "balance": _json(new), "previous": None if old is None else _json(old),
                     "changed_at": changed_at})
    if rows:
        conn.execute(store.balance_history.insert(), rows)
    return len(rows)


def _json(balance: GroupBalance) -> str:
    return orjson.dumps({currency: str(amount) for currency, amount in sorted(balance.amounts.items())}).decode()
