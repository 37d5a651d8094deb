"""The report's rows from the store, counted and matched by the database: sends and clicks per slice and day,
and each settlement with the last email sent to its group before it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
from sqlalchemy import ColumnElement, Connection, Text, func, select, type_coerce

from dunning import store
from dunning.report.figures import UNCREDITED, Count, EmailRow, Settlement

__all__ = ["counts", "settlements"]

_NOTHING = "{}"


def counts(conn: Connection, *, start: datetime | None, before: datetime | None) -> Iterator[Count]:
    """Sent and clicked emails per notice, stage, locale, segment and UTC day of the notice's as_of."""
    emails, notices, accounts, clicks = store.emails, store.notices, store.accounts, store.link_clicks
    clicked = select(clicks.c.email_id).where(clicks.c.email_id.is_not(None)).distinct().subquery()
    day = store.backend_of(conn).utc_day(notices.c.as_of)
    keys = (emails.c.notice, emails.c.stage, emails.c.locale, accounts.c.segment, day)
    # Distinct: an email that answered several keys has a notices row for each.
    query = (select(*keys, func.count(emails.c.id.distinct()), func.count(clicked.c.email_id.distinct()))
             .select_from(notices.join(emails, emails.c.id == notices.c.email_id)
                          .outerjoin(accounts, accounts.c.id == emails.c.account_id)
                          .outerjoin(clicked, clicked.c.email_id == emails.c.id))
             .where(emails.c.status == "sent", notices.c.outcome == "email", notices.c.as_of.is_not(None),
                    *_period(notices.c.as_of, start, before))
             .group_by(*keys))
    for notice, stage, locale, segment, on, sent, clicks_ in conn.execute(query):
        yield Count(notice, stage, locale, segment, date.fromisoformat(on), sent, clicks_)


def _period(moment: ColumnElement[datetime], start: datetime | None,
            before: datetime | None) -> list[ColumnElement[bool]]:
    return [*([moment >= start] if start else []), *([moment < before] if before else [])]


def settlements(conn: Connection) -> Iterator[tuple[Settlement, EmailRow | None]]:
    """Every time a group with a live subscription went from owing something to owing nothing, with the last
    email (that asks for something) sent to the group before it, if any."""
    history, emails, notices, accounts = store.balance_history, store.emails, store.notices, store.accounts
    last = (select(notices.c.email_id).join(emails, emails.c.id == notices.c.email_id)
            .where(notices.c.account_id == history.c.account_id,
                   emails.c.payment_method_id == history.c.payment_method_id, emails.c.status == "sent",
                   notices.c.as_of < history.c.changed_at, emails.c.notice.not_in(sorted(UNCREDITED)))
            .order_by(notices.c.as_of.desc(), notices.c.email_id.desc()).limit(1).scalar_subquery())
    found = (select(history.c.account_id, history.c.payment_method_id, history.c.changed_at, history.c.previous,
                    last.label("email_id"))
             .where(history.c.balance == _NOTHING, history.c.live, history.c.previous.is_not(None),
                    history.c.previous != _NOTHING)
             # Materialized: flattened into the query below, each correlated subquery would run once per use.
             .cte("found").prefix_with("MATERIALIZED"))
    sent_at = (select(func.min(notices.c.as_of)).where(notices.c.email_id == found.c.email_id)
               .scalar_subquery())
    # The two moments come back as the driver gives them (text on SQLite): _moment reads them without
    # SQLAlchemy's per-value processing, which cost more than the query itself.
    query = (select(found.c.account_id, found.c.payment_method_id, type_coerce(found.c.changed_at, Text),
                    found.c.previous, emails.c.id, emails.c.notice, emails.c.stage, emails.c.locale,
                    accounts.c.segment, type_coerce(sent_at, Text))
             .select_from(found.outerjoin(emails, emails.c.id == found.c.email_id)
                          .outerjoin(accounts, accounts.c.id == emails.c.account_id)))
    for account, method, at, owed, email_id, notice, stage, locale, segment, sent_at_ in conn.execute(query):
        settlement = Settlement(account, method, _moment(at), {currency: Decimal(amount)
                                                               for currency, amount in orjson.loads(owed).items()})
        email = None if email_id is None else EmailRow(email_id, notice, stage, locale, segment, _moment(sent_at_))
        yield settlement, email


def _moment(value: str | datetime) -> datetime:
    """An aware UTC moment from SQLite's text (naive UTC) or PostgreSQL's aware datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
