"""The report's rows from the store: sent emails with their notice's moment, unique clicks, settlements."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import orjson
from sqlalchemy import Connection, and_, func, select

from dunning import store
from dunning.report.figures import EmailRow, Settlement

__all__ = ["sent_emails", "clicked_emails", "settlements"]

_NOTHING = "{}"


def sent_emails(conn: Connection) -> Iterator[EmailRow]:
    """Every sent email (once, however many keys it answered), at its notice's as_of, in id order."""
    emails, notices, accounts = store.emails, store.notices, store.accounts
    query = (select(emails.c.id, emails.c.account_id, emails.c.payment_method_id, emails.c.notice, emails.c.stage,
                    emails.c.locale, accounts.c.segment, notices.c.as_of)
             .select_from(notices.join(emails, emails.c.id == notices.c.email_id)
                          .outerjoin(accounts, accounts.c.id == emails.c.account_id))
             .where(emails.c.status == "sent", notices.c.as_of.is_not(None))
             .order_by(notices.c.email_id))
    last = None
    for row in conn.execution_options(yield_per=10_000).execute(query):
        if row[0] != last:
            last = row[0]
            yield EmailRow(*row)


def clicked_emails(conn: Connection) -> set[int]:
    """The ids of the emails whose link was followed at least once."""
    clicks = store.link_clicks
    return set(conn.execute(select(clicks.c.email_id).where(clicks.c.email_id.is_not(None)).distinct()).scalars())


def settlements(conn: Connection) -> list[Settlement]:
    """Every time a group with a live subscription went from owing something to owing nothing."""
    history = store.balance_history
    previous = func.lag(history.c.balance).over(partition_by=(history.c.account_id, history.c.payment_method_id),
                                                order_by=(history.c.changed_at, history.c.id)).label("previous")
    changes = select(history.c.account_id, history.c.payment_method_id, history.c.changed_at, history.c.balance,
                     history.c.live, previous).subquery()
    query = (select(changes.c.account_id, changes.c.payment_method_id, changes.c.changed_at, changes.c.previous)
             .where(and_(changes.c.balance == _NOTHING, changes.c.live, changes.c.previous.is_not(None),
                         changes.c.previous != _NOTHING)))
    return [Settlement(account, method, at, {currency: Decimal(amount)
                                             for currency, amount in orjson.loads(owed).items()})
            for account, method, at, owed in conn.execute(query)]
