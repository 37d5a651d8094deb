"""Bounce messages → ledger: classify each, map it through its VERP address to one email, record, suppress.

Ingesting is idempotent: each message is recorded by a digest of its Message-ID and its body in the same
transaction as what it says, so the same message read twice changes nothing (and is flagged seen), while a
different bounce that happens to share a Message-ID is still read. A message that cannot be classified,
whose bounce address is not one of ours (unsigned, forged, or for another sender), or that raises anything
at all while being read, is counted and kept aside in the unparsed Maildir, never dropped: no message
stops the ingest or blocks the messages after it.

Only a permanent failure of the recipient's own (user unknown, host unknown, has moved, not accepting
mail) suppresses on one bounce; the mailbox's passing states count toward the soft limit; what the sending
side must fix (blocked, policy, authentication, rate limits, content) is recorded but never counts against
the customer (`dunning bounces report` lists it).
"""

from __future__ import annotations

import email
import email.utils
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path

import orjson
from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import InterfaceError, OperationalError

from dunning import store
from dunning.bounces import suppressions
from dunning.bounces.classify import Failure, Verdict, classify
from dunning.bounces.sources import RawMessage, keep_aside, mark_done
from dunning.bounces.verp import parse_verp
from dunning.errors import BounceDeferredError, DunningError
from dunning.settings import BouncesSettings
from dunning.vocabulary import SuppressionReason

__all__ = ["IngestReport", "ingest", "message_key", "bounce_addresses"]

log = logging.getLogger(__name__)
_RANK = {"hard": 0, "soft": 1, "ours": 2}
_KEPT_ASIDE = ("unparsed", "unmatched", "failed")

# Headers an MTA writes the envelope recipient into on delivery (the VERP address), most precise first.
_ENVELOPE_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To")


@dataclass
class IngestReport:
    """What one ingest did, message by message and address by address."""

    messages: int = 0
    hard: int = 0
    soft: int = 0
    ours: int = 0        # failures the sending side must fix: recorded, never suppressing
    feedback: int = 0    # complaints (ARF, SES): recognised, never suppressing
    autoreply: int = 0   # out-of-office and other automatic replies
    delivered: int = 0   # delivery reports that are no failure (relayed, delivered)
    unparsed: int = 0    # no failure found in it: kept aside
    unmatched: int = 0   # failures, but not to a signed bounce address of ours: kept aside
    failed: int = 0      # reading it raised an error: kept aside, the ingest went on
    duplicates: int = 0  # ingested before: nothing changed
    suppressed: list[str] = field(default_factory=list)  # addresses suppressed by this ingest
    reasons: Counter[str] = field(default_factory=Counter)  # recorded failures by reason

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-able values."""
        counts = {name: getattr(self, name) for name in ("messages", "hard", "soft", "ours", "feedback", "autoreply",
                                                         "delivered", "unparsed", "unmatched", "failed",
                                                         "duplicates")}
        return {**counts, "suppressed": sorted(self.suppressed), "reasons": dict(sorted(self.reasons.items()))}


def message_key(message: Message, data: bytes) -> str:
    """What identifies a message across ingests: a digest of its Message-ID and its body (what follows the
    headers, which an MTA adds to on each delivery), so a copy is known and a different bounce never is."""
    message_id = str(message.get("Message-ID") or "").strip().encode("utf-8", "surrogateescape")
    head, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    return "sha256:" + hashlib.sha256(message_id + b"\0" + (body if sep else head)).hexdigest()


def bounce_addresses(message: Message) -> list[str]:
    """Every address a bounce was delivered to, as the receiving MTA recorded it: candidates for VERP."""
    found = []
    for name in _ENVELOPE_HEADERS:
        for value in message.get_all(name) or ():
            found += [address for _, address in email.utils.getaddresses([str(value)]) if address]
    return list(dict.fromkeys(found))


def ingest(engine: Engine, messages: Iterable[RawMessage], settings: BouncesSettings, keys: Sequence[str], *,
           now: datetime, by: str = "bounce") -> IngestReport:
    """Ingest every message; each in its own transaction, so an interrupted ingest loses nothing."""
    report = IngestReport()
    for raw in messages:
        report.messages += 1
        try:
            outcome = _ingest_one(engine, raw, settings, keys, now, by, report)
        except (OperationalError, InterfaceError) as exc:  # the database's trouble, not the message's
            raise BounceDeferredError(f"{raw.origin}: not recorded, the database failed: {exc.orig or exc}") from exc
        except DunningError:
            raise  # the ingest's own trouble (the database, the keep-aside folder), not the message's
        except Exception:  # one message, whatever is wrong with it, never stops the others
            log.warning("a message raised an error while read (%s): kept aside", raw.origin, exc_info=True)
            outcome = "failed"
            _keep_aside(raw, Path(settings.unparsed))
        setattr(report, outcome, getattr(report, outcome) + 1)
        if outcome not in _KEPT_ASIDE:
            mark_done(raw)
    return report


def _keep_aside(raw: RawMessage, folder: Path) -> None:
    try:
        keep_aside(raw, folder)
    except OSError as exc:
        raise BounceDeferredError(f"{raw.origin}: cannot be kept aside in {folder}: {exc.strerror or exc}") from exc


def _ingest_one(engine: Engine, raw: RawMessage, settings: BouncesSettings, keys: Sequence[str], now: datetime,
                by: str, report: IngestReport) -> str:
    """Record one message; its outcome (hard, soft, ours, feedback, …, duplicates)."""
    size = raw.unread if raw.unread is not None else len(raw.data)
    if size > settings.max_message_bytes:  # parsed, it would take several times its size in memory
        log.warning("%s: more than bounces.max_message_bytes (%d bytes): kept aside unread", raw.origin,
                    settings.max_message_bytes)
        _keep_aside(raw, Path(settings.unparsed))
        return "unparsed"
    message = email.message_from_bytes(raw.data)
    key = message_key(message, raw.data)
    if _seen(engine, key):
        return "duplicates"
    verdict = classify(message)
    email_id = _email_id(message, settings.return_path, keys)
    outcome = _outcome(verdict, email_id)
    if outcome in _KEPT_ASIDE:
        _keep_aside(raw, Path(settings.unparsed))  # before it is recorded: a crash between keeps two copies, not none
    with engine.begin() as conn:
        if _seen(conn, key):
            return "duplicates"
        conn.execute(insert(store.bounce_messages).values(key=key, outcome=outcome, email_id=email_id,
                                                          ingested_at=now))
        if outcome in ("hard", "soft", "ours") and email_id is not None:
            at = _bounced_at(message, now)
            report.suppressed += _record(conn, email_id, verdict.failures, key, at, settings, by, report.reasons)
    return outcome


def _seen(engine_or_conn: Engine | Connection, key: str) -> bool:
    query = select(store.bounce_messages.c.key).where(store.bounce_messages.c.key == key)
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return conn.execute(query).first() is not None
    return engine_or_conn.execute(query).first() is not None


def _email_id(message: Message, return_path: str | None, keys: Sequence[str]) -> int | None:
    if return_path is None:
        return None
    for address in bounce_addresses(message):
        email_id = parse_verp(address, return_path, keys)
        if email_id is not None:
            return email_id
    return None


def _outcome(verdict: Verdict, email_id: int | None) -> str:
    if verdict.outcome != "bounce":
        return verdict.outcome
    return verdict.kind if email_id is not None else "unmatched"


def _bounced_at(message: Message, now: datetime) -> datetime:
    """When the bounce was written (its Date), unless missing or in the future: then now."""
    try:
        written = email.utils.parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return now
    return written if written.tzinfo is not None and written <= now else now


def _recipients(conn: Connection, email_id: int) -> tuple[str | None, list[str]]:
    """The account an email was for and its recipients (normalized); (None, []) when there is no such email."""
    account = conn.execute(select(store.emails.c.account_id).where(store.emails.c.id == email_id)).scalar()
    payload = conn.execute(select(store.email_payloads.c.payload)
                           .where(store.email_payloads.c.email_id == email_id)).scalar()
    if account is None or payload is None:
        return None, []
    data = orjson.loads(payload)
    return account, list(dict.fromkeys(suppressions.normalize(r) for r in [*data.get("to", []), *data.get("cc", [])]))


def _matched(failures: Sequence[Failure], recipients: list[str]) -> list[Failure]:
    """The failures of this email's own recipients; an email to one recipient owns the failure even when the
    bounce names another address (a forward the recipient's server followed)."""
    mine = [f for f in failures if f.address in recipients]
    if not mine and len(recipients) == 1 and failures:
        worst = min(failures, key=lambda f: _RANK[f.kind])
        mine = [Failure(recipients[0], worst.reason, worst.kind, worst.status, worst.diagnostic)]
    return mine


def _record(conn: Connection, email_id: int, failures: Sequence[Failure], key: str, at: datetime,
            settings: BouncesSettings, by: str, reasons: Counter[str]) -> list[str]:
    """Record each failure of the email's recipients and suppress where due; the addresses newly suppressed."""
    account, recipients = _recipients(conn, email_id)
    if account is None:
        return []
    added = []
    for failure in _matched(failures, recipients):
        conn.execute(insert(store.bounces).values(address=failure.address, kind=failure.kind, email_id=email_id,
                                                  account_id=account, status=failure.status, reason=failure.reason,
                                                  diagnostic=_text(failure.diagnostic)[:1000] or None,
                                                  message_key=key, bounced_at=at))
        reasons[failure.reason] += 1
        detail = " ".join(filter(None, [failure.reason, failure.status, _text(failure.diagnostic)])) or None
        reason: SuppressionReason
        if failure.kind == "hard":
            reason = "hard_bounce"
        elif _soft_count(conn, failure.address, at, settings.window_days) >= settings.soft_limit:
            reason = "soft_bounces"
        else:
            continue
        if suppressions.suppress(conn, failure.address, reason=reason, detail=detail, now=at, by=by,
                                 account=account, email_id=email_id):
            added.append(failure.address)
    return added


def _text(value: str | None) -> str:
    """A diagnostic as text a database takes (no stray surrogates from 8-bit bytes)."""
    return (value or "").encode("utf-8", "replace").decode("utf-8")


def _soft_count(conn: Connection, address: str, at: datetime, window_days: int) -> int:
    """Emails to the address that soft-bounced within the window ending at `at` (several reports of one email,
    such as delay warnings followed by the failure, count once)."""
    b = store.bounces.c
    query = select(func.count(func.distinct(b.email_id))).where(
        b.address == address, b.kind == "soft", b.bounced_at > at - timedelta(days=window_days), b.bounced_at <= at)
    return int(conn.execute(query).scalar() or 0)
