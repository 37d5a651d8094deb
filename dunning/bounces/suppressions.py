"""The suppressed addresses: who is never mailed again, since when, why and by whom; and who is left unreachable."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import orjson
from sqlalchemy import Connection, Engine, delete, func, select

from dunning import store
from dunning.vocabulary import SuppressionReason

__all__ = ["Suppression", "UnreachableAccount", "normalize", "suppressed_among", "suppress", "add", "remove",
           "list_suppressions", "unreachable_accounts"]

suppressions, bounces = store.suppressions, store.bounces


@dataclass(frozen=True, slots=True)
class Suppression:
    """One suppressed address."""

    address: str
    reason: str
    detail: str | None
    account: str | None
    email_id: int | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UnreachableAccount:
    """An account with dunning due whose every address is suppressed, and what it owes."""

    account: str
    name: str
    addresses: tuple[str, ...]
    balance: dict[str, Decimal]


def normalize(address: str) -> str:
    """The form an address is suppressed and looked up in: trimmed and lower-cased."""
    return address.strip().lower()


def suppressed_among(conn: Connection, addresses: Iterable[str]) -> set[str]:
    """Which of these addresses are suppressed (in normalized form)."""
    wanted = sorted({normalize(a) for a in addresses})
    if not wanted:
        return set()
    query = select(suppressions.c.address).where(store.among(conn, suppressions.c.address, wanted))
    return set(conn.execute(query).scalars())


def suppress(conn: Connection, address: str, *, reason: SuppressionReason, detail: str | None, now: datetime,
             by: str, account: str | None = None, email_id: int | None = None) -> bool:
    """Suppress one address unless it already is; whether it was added."""
    address = normalize(address)
    if conn.execute(select(suppressions.c.address).where(suppressions.c.address == address)).first():
        return False
    conn.execute(suppressions.insert().values(address=address, reason=reason, detail=detail, account_id=account,
                                              email_id=email_id, created_by=by, created_at=now))
    return True


def add(engine: Engine, addresses: Sequence[str], *, reason: str | None, by: str, now: datetime) -> list[str]:
    """Suppress these addresses by hand (an operator's decision); the ones newly added."""
    with engine.begin() as conn:
        return [normalize(a) for a in addresses
                if suppress(conn, a, reason="manual", detail=reason, now=now, by=by)]


def remove(engine: Engine, addresses: Sequence[str]) -> list[str]:
    """Lift the suppression of these addresses (the customer fixed their mailbox), forgetting their bounces,
    so that earlier soft bounces do not count against the next email; the ones that were suppressed."""
    wanted = sorted({normalize(a) for a in addresses})
    with engine.begin() as conn:
        held = sorted(suppressed_among(conn, wanted))
        if held:
            conn.execute(delete(suppressions).where(suppressions.c.address.in_(held)))
            conn.execute(delete(bounces).where(bounces.c.address.in_(held)))
    return held


def list_suppressions(engine: Engine) -> list[Suppression]:
    """Every suppressed address, newest first."""
    s = suppressions.c
    query = select(s.address, s.reason, s.detail, s.account_id, s.email_id, s.created_by, s.created_at) \
        .order_by(s.created_at.desc(), s.address)
    with engine.connect() as conn:
        return [Suppression(*row) for row in conn.execute(query)]


def unreachable_accounts(engine: Engine) -> list[UnreachableAccount]:
    """Accounts that owe money (dunning is due) and whose every address, email and cc, is suppressed."""
    a, i = store.accounts, store.invoices
    with engine.connect() as conn:
        # Every recipient suppressed means the billing contact (email) is: start from those accounts.
        rows = conn.execute(select(a.c.id, a.c.name, a.c.email, a.c.cc)
                            .where(func.lower(func.trim(a.c.email)).in_(select(suppressions.c.address)))
                            .order_by(a.c.id)).all()
        addresses = {row.id: tuple(dict.fromkeys(normalize(x) for x in [row.email, *orjson.loads(row.cc or "[]")]))
                     for row in rows}
        held = suppressed_among(conn, [x for xs in addresses.values() for x in xs])
        dead = [row for row in rows if addresses[row.id] and set(addresses[row.id]) <= held]
        balance: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        if dead:
            # Owed is tested on the rows: in the WHERE, SQLite walks the owed-invoice index over the whole store.
            invoices = select(i.c.account_id, i.c.currency, i.c.total, i.c.amount_paid, i.c.owed).where(
                store.among(conn, i.c.account_id, [row.id for row in dead]))
            for account, currency, total, paid, owed in conn.execute(invoices):
                if owed:
                    balance[account][currency] += Decimal(total) - Decimal(paid)
    return [UnreachableAccount(row.id, row.name, addresses[row.id], dict(sorted(balance[row.id].items())))
            for row in dead if balance[row.id]]
