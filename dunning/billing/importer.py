"""`dunning import`: stream JSON Lines billing state into the store, in batches, one bad line losing nothing else."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import Connection, Engine, Table, delete, select
from sqlalchemy.exc import DataError, IntegrityError

from dunning import store
from dunning.billing import balances
from dunning.billing.contract import Account
from dunning.errors import ContractViolation, RecordError

log = logging.getLogger(__name__)

__all__ = ["MAX_NESTING", "MAX_LINE_BYTES", "CHILDREN", "ParsedLine", "ImportSummary", "parse_lines", "parse_line",
           "field_path", "unknown_fields", "import_stream"]

CHILDREN = (("payment_methods", store.payment_methods), ("subscriptions", store.subscriptions),
            ("invoices", store.invoices), ("charges", store.charges))


@dataclass(frozen=True, slots=True)
class ParsedLine:
    line: int
    account: Account
    digest: str


@dataclass
class ImportSummary:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    warnings: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"imported": self.imported, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": self.rejected, "warnings": self.warnings}


MAX_LINE_BYTES = 16 * 1024 * 1024  # database.max_line_bytes's default
_SKIP_CHUNK = 64 * 1024  # what a line past the limit is read over in, never held whole


def parse_lines(stream: BinaryIO, warn: Callable[[RecordError], None],
                max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[ParsedLine | RecordError]:
    """Each non-blank line as a validated account or as the RecordError that rejects it."""
    for number, raw in enumerate(_bounded_lines(stream, max_line_bytes), start=1):
        if raw is None:
            yield RecordError(f"longer than {max_line_bytes} bytes (database.max_line_bytes): skipped", line=number)
        elif raw.strip():
            try:
                yield parse_line(raw, number, warn)
            except Exception as exc:  # one line, however hostile, rejects itself alone
                log.debug("line %d raised", number, exc_info=True)
                yield RecordError(f"cannot be read: {type(exc).__name__}", line=number)


def _bounded_lines(stream: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """Each line of the stream, or None for one longer than limit: memory stays bounded by the limit
    whatever the file holds (a line of gigabytes, a file without a newline)."""
    while raw := stream.readline(limit + 1):
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = stream.readline(_SKIP_CHUNK)
        yield None


# The contract nests four levels (account, list, record, value); far less than the interpreter's recursion
# limit, which a library may change: the depth is checked here, not left to a RecursionError.
MAX_NESTING = 32
_BRACKETS = re.compile(r'[\[{]|[\]}]|"(?:[^"\\]|\\.)*"')


def _nesting(text: str) -> int:
    """How deep the brackets of a JSON text nest, strings skipped (counted only when there are many)."""
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return 0
    depth = deepest = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def parse_line(raw: bytes, number: int, warn: Callable[[RecordError], None]) -> ParsedLine | RecordError:
    """Validate one raw line of the contract."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RecordError(f"not UTF-8: invalid byte 0x{raw[exc.start]:02x} at byte {exc.start + 1}",
                           line=number)
    if _nesting(text) > MAX_NESTING:
        return RecordError(f"not valid JSON: nested more than {MAX_NESTING} deep", line=number)
    try:
        data = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        truncated = not raw.endswith(b"\n")
        prefix = "truncated line (the file ends inside a record): " if truncated else ""
        message = exc.msg.removesuffix(" at")  # "Unterminated string starting at": the column follows
        return RecordError(f"{prefix}not valid JSON: {message} at column {exc.colno}", line=number)
    except RecursionError:
        return RecordError("not valid JSON: nested too deeply", line=number)
    except ValueError as exc:  # an integer of thousands of digits
        return RecordError(f"not valid JSON: {exc}", line=number)
    if not isinstance(data, dict):
        return RecordError(f"not a JSON object but {type(data).__name__}", line=number)
    account_id = data.get("id") if isinstance(data.get("id"), str) and len(data["id"]) <= 200 else None
    if _LONE_SURROGATE.search(text) and not _encodable(data):
        return RecordError("a string holds a lone surrogate escape (such as \\ud800): not text",
                           line=number, account=account_id)
    try:
        account = Account.model_validate(data)
    except ValidationError as exc:
        return _first_error(exc, number, account_id)
    except (RecursionError, ValueError, TypeError, OverflowError, ArithmeticError) as exc:
        # Whatever one line can make validation raise rejects that line alone.
        return RecordError(f"cannot be read: {type(exc).__name__}: {str(exc)[:200]}", line=number,
                           account=account_id)
    for path in unknown_fields(account):
        warn(RecordError("unknown field, ignored", line=number, account=account_id, field=path))
    return ParsedLine(number, account, hashlib.blake2b(raw.strip(), digest_size=16).hexdigest())


_LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # the escape of a UTF-16 surrogate half


def _encodable(data: object) -> bool:
    """Whether every string of the parsed line is text (no surrogate left alone by a JSON escape)."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_error(exc: ValidationError, number: int, account_id: str | None) -> RecordError:
    error = exc.errors(include_url=False)[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ContractViolation):
        return RecordError(cause.reason, line=number, account=account_id, field=cause.path)
    path = field_path(error["loc"])
    reason = str(cause) if isinstance(cause, ValueError) else _reason(error)
    if error["type"] == "missing":
        reason = "required field is missing"
    return RecordError(reason, line=number, account=account_id, field=path or None)


def _reason(error: ErrorDetails) -> str:
    value = error.get("input")
    shown = json.dumps(value, ensure_ascii=False, default=str)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {shown}"


def field_path(loc: Iterable[str | int]) -> str:
    """('invoices', 0, 'due_date') → 'invoices[0].due_date' (pydantic's model-validator parts dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "literal[")):
            out += f".{part}" if out else part
    return out


def unknown_fields(account: Account) -> Iterator[str]:
    """Field paths present in the line but not in the contract."""
    yield from sorted(account.model_extra or {})
    for name, _table in CHILDREN:
        for index, child in enumerate(getattr(account, name)):
            for extra in sorted(child.model_extra or {}):
                yield f"{name}[{index}].{extra}"


def import_stream(engine: Engine, stream: BinaryIO, *, batch_size: int, max_line_bytes: int = MAX_LINE_BYTES,
                  on_error: Callable[[RecordError], None] = lambda e: None,
                  on_warning: Callable[[RecordError], None] = lambda e: None,
                  as_of: datetime | None = None) -> ImportSummary:
    """Import every good line of the stream; bad lines are reported through on_error and counted.

    The balance changes it brings are dated as_of (default: now) in the balance history."""
    summary = ImportSummary()
    as_of = as_of or datetime.now(UTC)

    def warn(error: RecordError) -> None:
        summary.warnings += 1
        on_warning(error)

    def reject(error: RecordError) -> None:
        summary.rejected += 1
        on_error(error)

    batch: list[ParsedLine] = []
    for parsed in parse_lines(stream, warn, max_line_bytes):
        if isinstance(parsed, RecordError):
            reject(parsed)
            continue
        batch.append(parsed)
        if len(batch) >= batch_size:
            _flush_or_split(engine, batch, summary, reject, as_of)
            batch = []
    if batch:
        _flush_or_split(engine, batch, summary, reject, as_of)
    return summary


def _flush_or_split(engine: Engine, batch: list[ParsedLine], summary: ImportSummary,
                    reject: Callable[[RecordError], None], as_of: datetime) -> None:
    """Write a batch; should the database refuse it, write its lines one by one, rejecting those it refuses."""
    try:
        _flush(engine, batch, summary, reject, as_of)
    except (DataError, IntegrityError, OverflowError, UnicodeEncodeError) as exc:
        if len(batch) == 1:
            reject(RecordError(f"the database refused it: {type(exc).__name__}", line=batch[0].line,
                               account=batch[0].account.id))
            return
        for parsed in batch:
            _flush_or_split(engine, [parsed], summary, reject, as_of)


def _flush(engine: Engine, batch: list[ParsedLine], summary: ImportSummary,
           reject: Callable[[RecordError], None], as_of: datetime) -> None:
    # A repeated account within one batch: the later line wins, as it would across batches.
    latest = {parsed.account.id: parsed for parsed in batch}
    with engine.begin() as conn:
        known = dict(conn.execute(select(store.accounts.c.id, store.accounts.c.content_hash)
                                  .where(store.among(conn, store.accounts.c.id, list(latest)))).all())
        changed = [p for p in latest.values() if known.get(p.account.id) != p.digest]
        summary.unchanged += len(latest) - len(changed)
        conflicts = _ownership_conflicts(conn, changed)
        for error in conflicts.values():
            reject(error)
        changed = [p for p in changed if p.line not in conflicts]
        ids = [p.account.id for p in changed]
        before = balances.read_balances(conn, ids)
        _replace_accounts(conn, changed)
        balances.record_changes(conn, before, balances.read_balances(conn, ids), as_of)
    for parsed in changed:
        if parsed.account.id in known:
            summary.updated += 1
        else:
            summary.imported += 1


def _ownership_conflicts(conn: Connection, changed: list[ParsedLine]) -> dict[int, RecordError]:
    """Lines listing a child id that another account already owns (in the store or earlier in the batch)."""
    conflicts: dict[int, RecordError] = {}  # by line number
    for name, table in CHILDREN:
        wanted = [c.id for p in changed for c in getattr(p.account, name)]
        claimed: dict[str, str] = dict(conn.execute(select(table.c.id, table.c.account_id)
                                                    .where(store.among(conn, table.c.id, wanted))).all())
        for parsed in changed:
            for index, child in enumerate(getattr(parsed.account, name)):
                owner = claimed.setdefault(child.id, parsed.account.id)
                if owner != parsed.account.id and parsed.line not in conflicts:
                    conflicts[parsed.line] = RecordError(
                        f'id "{child.id}" already belongs to account "{owner}"', line=parsed.line,
                        account=parsed.account.id, field=f"{name}[{index}].id")
    return conflicts


def _replace_accounts(conn: Connection, changed: list[ParsedLine]) -> None:
    if not changed:
        return
    ids = [p.account.id for p in changed]
    for _name, table in CHILDREN:
        conn.execute(delete(table).where(store.among(conn, table.c.account_id, ids)))
    _upsert(conn, store.accounts, [_account_row(p) for p in changed])
    rows = _child_rows([p.account for p in changed])
    for _name, table in CHILDREN:
        if rows[table.name]:
            conn.execute(table.insert(), rows[table.name])


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    statement = store.backend_of(conn).insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if not c.primary_key}
    conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_=updates), rows)


def _account_row(parsed: ParsedLine) -> dict[str, Any]:
    a = parsed.account
    return {"id": a.id, "name": a.name, "email": a.email, "cc": json.dumps(a.cc), "locale": a.locale,
            "timezone": a.timezone, "content_hash": parsed.digest,
            "dunning_paused_until": a.dunning_paused_until, "segment": a.segment}


def _child_rows(accounts: list[Account]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {t.name: [] for _n, t in CHILDREN}
    for a in accounts:
        rows["payment_methods"] += [
            {"id": pm.id, "account_id": a.id, "type": pm.type, "brand": pm.brand, "last4": pm.last4,
             "exp_month": pm.exp_month, "exp_year": pm.exp_year, "expiry_month": pm.expiry_month}
            for pm in a.payment_methods]
        rows["subscriptions"] += [
            {"id": s.id, "account_id": a.id, "name": s.name, "payment_method_id": s.payment_method,
             "status": s.status, "cancelled_at": s.cancelled_at, "cancel_reason": s.cancel_reason,
             "data_deleted": s.data_deleted} for s in a.subscriptions]
        rows["invoices"] += [
            {"id": i.id, "account_id": a.id, "subscription_id": i.subscription, "currency": i.currency,
             "total": str(i.total), "amount_paid": str(i.amount_paid), "owed": i.owed,
             "issued_date": i.issued_date, "due_date": i.due_date, "status": i.status,
             "hosted_invoice_url": i.payment_url} for i in a.invoices]
        rows["charges"] += [
            {"id": c.id, "account_id": a.id, "invoice_id": c.invoice, "payment_method_id": c.payment_method,
             "attempted_at": c.attempted_at, "outcome": c.outcome, "failure_code": c.failure_code,
             "next_retry_at": c.next_retry_at} for c in a.charges]
    return rows
