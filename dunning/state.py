"""Reading accounts back from the store as contract models, many at a time."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection, select

from dunning import store
from dunning.billing import Account, Charge, Invoice, PaymentMethod, Subscription

M = TypeVar("M", bound=BaseModel)
_new, _set = object.__new__, object.__setattr__


def load_accounts(conn: Connection, ids: Sequence[str]) -> list[Account]:
    """The accounts with these ids and all their children, in the order of `ids` (unknown ids skipped)."""
    if not ids:
        return []
    children = {name: _by_account(conn, table, ids) for name, table in
                (("payment_methods", store.payment_methods), ("subscriptions", store.subscriptions),
                 ("invoices", store.invoices), ("charges", store.charges))}
    rows = {row.id: row for row in conn.execute(
        select(store.accounts).where(store.accounts.c.id.in_(list(ids))))}
    return [_account(rows[i], children) for i in ids if i in rows]


def _by_account(conn: Connection, table, ids: Sequence[str]) -> dict[str, list]:
    grouped: dict[str, list] = defaultdict(list)
    for row in conn.execute(select(table).where(table.c.account_id.in_(list(ids))).order_by(table.c.id)).all():
        grouped[row.account_id].append(row)
    return grouped


def _account(row, children: dict[str, dict[str, list]]) -> Account:
    key = row.id
    return _stored(Account,
        id=row.id, name=row.name, email=row.email, cc=json.loads(row.cc), locale=row.locale,
        timezone=row.timezone,
        payment_methods=[_stored(PaymentMethod,
            id=r.id, type=r.type, brand=r.brand, last4=r.last4, exp_month=r.exp_month,
            exp_year=r.exp_year) for r in children["payment_methods"].get(key, [])],
        subscriptions=[_stored(Subscription,
            id=r.id, name=r.name, payment_method=r.payment_method_id, status=r.status,
            cancelled_at=r.cancelled_at, cancel_reason=r.cancel_reason, data_deleted=bool(r.data_deleted))
            for r in children["subscriptions"].get(key, [])],
        invoices=[_stored(Invoice,
            id=r.id, subscription=r.subscription_id, currency=r.currency, total=Decimal(r.total),
            amount_paid=Decimal(r.amount_paid), issued_date=r.issued_date, due_date=r.due_date,
            status=r.status) for r in children["invoices"].get(key, [])],
        charges=[_stored(Charge,
            id=r.id, invoice=r.invoice_id, payment_method=r.payment_method_id, attempted_at=r.attempted_at,
            outcome=r.outcome, failure_code=r.failure_code, next_retry_at=r.next_retry_at)
            for r in children["charges"].get(key, [])],
    )


def _stored(model: type[M], **values: Any) -> M:
    """What model_construct(**values) builds, for values that name every field: read back from the
    store, they were validated on import. A quarter of model_construct's cost (which looks up each
    field and its default): it runs five times or more per account."""
    record = _new(model)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", set(values))
    _set(record, "__pydantic_extra__", {})  # the models keep unknown fields (extra="allow"); none are stored
    _set(record, "__pydantic_private__", None)
    return record
