"""What the links' landing reads and writes in the store: the email of a key, its clicks, the pages to send to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from dunning import store

__all__ = ["email_of", "record_click", "hosted_invoice_url", "locale_of"]


def email_of(engine: Engine, key: str) -> int | None:
    """The id of the email that carried this notice key, when the ledger has one."""
    with engine.connect() as conn:
        return conn.execute(select(store.notices.c.email_id).where(store.notices.c.key == key)).scalar()


def record_click(engine: Engine, *, key: str, email_id: int | None, purpose: str, at: datetime) -> None:
    """One click on a link (the report counts an email's clicks once)."""
    with engine.begin() as conn:
        conn.execute(store.link_clicks.insert().values(key=key, email_id=email_id, purpose=purpose, clicked_at=at))


def hosted_invoice_url(engine: Engine, account: str, payment_method: str) -> str | None:
    """The billing system's own payment page of the group's oldest owed invoice, when it has one."""
    invoices, subs = store.invoices, store.subscriptions
    query = (select(invoices.c.hosted_invoice_url)
             .join(subs, subs.c.id == invoices.c.subscription_id)
             .where(invoices.c.account_id == account, subs.c.payment_method_id == payment_method,
                    invoices.c.owed, invoices.c.hosted_invoice_url.is_not(None))
             .order_by(invoices.c.due_date, invoices.c.id).limit(1))
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def locale_of(engine: Engine, account: str) -> str | None:
    """The account's locale, when the store still holds it."""
    with engine.connect() as conn:
        return conn.execute(select(store.accounts.c.locale).where(store.accounts.c.id == account)).scalar()
