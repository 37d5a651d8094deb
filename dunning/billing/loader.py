"""Reading accounts back from the store as contract models, many at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import Column, Connection, Table, select

from dunning import store
from dunning.billing.contract import Account, Charge, Invoice, PaymentMethod, Subscription

__all__ = ["M", "load_accounts"]

M = TypeVar("M", bound=BaseModel)
_new, _set = object.__new__, object.__setattr__


def load_accounts(conn: Connection, ids: Sequence[str]) -> list[Account]:
    """The accounts with these ids and all their children, in the order of `ids` (unknown ids skipped)."""
    if not ids:
        return []
    ids = list(ids)
    children = [_by_account(conn, columns, ids) for columns in _CHILD_COLUMNS]
    rows = {row[0]: row for row in conn.execute(
        select(*_ACCOUNT_COLUMNS).where(store.among(conn, store.accounts.c.id, ids)))}
    return [_account(rows[i], *children) for i in ids if i in rows]


def _columns(table: Table, *names: str) -> tuple[Column[Any], ...]:
    return tuple(table.c[name] for name in names)


# Rows are unpacked by position, in the order of these columns: reading a Row's fields by name costs
# far more, and an account is five to twenty rows.
_ACCOUNT_COLUMNS = _columns(store.accounts, "id", "name", "email", "cc", "locale", "timezone",
                            "dunning_paused_until", "segment")
_Row = Sequence[Any]  # a row, read by position
_Rows = dict[str, list[_Row]]  # a child table's rows by account id
_CHILD_COLUMNS = (
    _columns(store.payment_methods, "account_id", "id", "type", "brand", "last4", "exp_month", "exp_year"),
    _columns(store.subscriptions, "account_id", "id", "name", "payment_method_id", "status", "cancelled_at",
             "cancel_reason", "data_deleted"),
    _columns(store.invoices, "account_id", "id", "subscription_id", "currency", "total", "amount_paid",
             "issued_date", "due_date", "status", "hosted_invoice_url"),
    _columns(store.charges, "account_id", "id", "invoice_id", "payment_method_id", "attempted_at", "outcome",
             "failure_code", "next_retry_at"),
)


def _by_account(conn: Connection, columns: tuple[Column[Any], ...], ids: list[str]) -> dict[str, list[_Row]]:
    """The rows of one child table for these accounts, by account, each in id order."""
    table = columns[0].table
    grouped: dict[str, list[_Row]] = defaultdict(list)
    for row in conn.execute(
            select(*columns).where(store.among(conn, table.c.account_id, ids)).order_by(table.c.id)).all():
        grouped[row[0]].append(row)
    return grouped


def _account(row: _Row, payment_methods: _Rows, subscriptions: _Rows, invoices: _Rows, charges: _Rows) -> Account:
    key, name, email, cc, locale, timezone, paused_until, segment = row
    return _stored(Account,
        id=key, name=name, email=email, cc=orjson.loads(cc), locale=locale, timezone=timezone,
        dunning_paused_until=paused_until, segment=segment,
        payment_methods=[_stored(PaymentMethod,
            id=id_, type=type_, brand=brand, last4=last4, exp_month=exp_month, exp_year=exp_year)
            for _, id_, type_, brand, last4, exp_month, exp_year in payment_methods.get(key, ())],
        subscriptions=[_stored(Subscription,
            id=id_, name=sub_name, payment_method=payment_method, status=status, cancelled_at=cancelled_at,
            cancel_reason=cancel_reason, data_deleted=bool(data_deleted))
            for _, id_, sub_name, payment_method, status, cancelled_at, cancel_reason, data_deleted
            in subscriptions.get(key, ())],
        invoices=[_stored(Invoice,
            id=id_, subscription=subscription, currency=currency, total=Decimal(total),
            amount_paid=Decimal(amount_paid), issued_date=issued_date, due_date=due_date, status=status,
            payment_url=payment_url)
            for _, id_, subscription, currency, total, amount_paid, issued_date, due_date, status, payment_url
            in invoices.get(key, ())],
        charges=[_stored(Charge,
            id=id_, invoice=invoice, payment_method=payment_method, attempted_at=attempted_at, outcome=outcome,
            failure_code=failure_code, next_retry_at=next_retry_at)
            for _, id_, invoice, payment_method, attempted_at, outcome, failure_code, next_retry_at
            in charges.get(key, ())],
    )


def _stored(model: type[M], **values: Any) -> M:
    """What model_construct(**values) builds, for values that name every field: read back from the
    store, they were validated on import. Skips model_construct's lookup of each field and its
    default: it runs five times or more per account."""
    record = _new(model)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", set(values))
    _set(record, "__pydantic_extra__", {})  # the models keep unknown fields (extra="allow"); none are stored
    _set(record, "__pydantic_private__", None)
    return record
