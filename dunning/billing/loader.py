"""Reading accounts back from the store as contract models, many at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import Column, Connection, Select, Table, Text, bindparam, select

from dunning import store
from dunning.billing.contract import Account, Charge, Invoice, PaymentMethod, Subscription
from dunning.store import Backend

__all__ = ["M", "load_accounts"]

M = TypeVar("M", bound=BaseModel)
_new, _set = object.__new__, object.__setattr__


def load_accounts(conn: Connection, ids: Sequence[str]) -> list[Account]:
    """The accounts with these ids and all their children, in the order of `ids` (unknown ids skipped)."""
    if not ids:
        return []
    statements, bound = _statements(store.backend_of(conn)), {"ids": orjson.dumps(list(ids)).decode()}
    children = [_by_account(conn.execute(statement, bound).all()) for statement in statements.children]
    rows = {row[0]: row for row in conn.execute(statements.accounts, bound).all()}
    return [_account(rows[i], *children) for i in ids if i in rows]


def _columns(table: Table, *names: str) -> tuple[Column[Any], ...]:
    return tuple(table.c[name] for name in names)


# Rows are unpacked by position, in the order of these columns: reading a Row's fields by name costs
# far more, and an account is five to twenty rows. A child's columns are its model's fields in order,
# then its account's id.
_ACCOUNT_COLUMNS = _columns(store.accounts, "id", "name", "email", "cc", "locale", "timezone",
                            "dunning_paused_until", "segment")
_Row = Sequence[Any]  # a row, read by position
_Rows = dict[str, list[_Row]]  # a child table's rows by account id
_RENAMED = {"payment_method": "payment_method_id", "subscription": "subscription_id", "invoice": "invoice_id",
            "payment_url": "hosted_invoice_url"}  # a field whose column is named otherwise
_PAYMENT_METHOD, _SUBSCRIPTION, _INVOICE, _CHARGE = (tuple(model.model_fields)
                                                     for model in (PaymentMethod, Subscription, Invoice, Charge))
_CHILD_COLUMNS = tuple(_columns(table, *(_RENAMED.get(name, name) for name in fields), "account_id")
                       for table, fields in ((store.payment_methods, _PAYMENT_METHOD),
                                             (store.subscriptions, _SUBSCRIPTION), (store.invoices, _INVOICE),
                                             (store.charges, _CHARGE)))


@dataclass(frozen=True, slots=True)
class _Statements:
    accounts: Select[Any]
    children: tuple[Select[Any], ...]


@cache
def _statements(backend: Backend) -> _Statements:
    """Built once: each reads the rows of the accounts whose ids are the JSON array :ids."""
    ids = backend.json_values(bindparam("ids", type_=Text), integers=False)
    return _Statements(
        select(*_ACCOUNT_COLUMNS).where(store.accounts.c.id.in_(ids)),
        tuple(select(*columns).where(columns[0].table.c.account_id.in_(ids)).order_by(columns[0])
              for columns in _CHILD_COLUMNS))


def _by_account(rows: Iterable[_Row]) -> dict[str, list[_Row]]:
    """The rows of one child table by account (its last column), each in id order."""
    grouped: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        grouped[row[-1]].append(row)
    return grouped


def _account(row: _Row, payment_methods: _Rows, subscriptions: _Rows, invoices: _Rows, charges: _Rows) -> Account:
    key, name, email, cc, locale, timezone, paused_until, segment = row
    return _stored(Account, {
        "id": key, "name": name, "email": email, "cc": orjson.loads(cc), "locale": locale, "timezone": timezone,
        "dunning_paused_until": paused_until, "segment": segment,
        "payment_methods": [_stored(PaymentMethod, dict(zip(_PAYMENT_METHOD, child, strict=False)))
                            for child in payment_methods.get(key, ())],
        "subscriptions": [_stored(Subscription, dict(zip(_SUBSCRIPTION, child, strict=False)))
                          for child in subscriptions.get(key, ())],
        "invoices": [_invoice(child) for child in invoices.get(key, ())],
        "charges": [_stored(Charge, dict(zip(_CHARGE, child, strict=False))) for child in charges.get(key, ())],
    })


def _invoice(row: _Row) -> Invoice:
    values = dict(zip(_INVOICE, row, strict=False))
    values["total"], values["amount_paid"] = Decimal(values["total"]), Decimal(values["amount_paid"])
    return _stored(Invoice, values)


def _stored(model: type[M], values: dict[str, Any]) -> M:
    """What model_construct(**values) builds, for values that name every field: read back from the
    store, they were validated on import. Skips model_construct's lookup of each field and its
    default: it runs five times or more per account."""
    record = _new(model)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", set(values))
    _set(record, "__pydantic_extra__", {})  # the models keep unknown fields (extra="allow"); none are stored
    _set(record, "__pydantic_private__", None)
    return record
