"""The report phase: `dunning report` over a ledger of N sent emails, their clicks and the settlements after them.

The ledger is written straight into a SQLite file (not measured: it is the input, not the work): N/2 groups,
each sent past_due stage 1 and, a week later, stage 2; a third of the second emails clicked; a quarter of the
groups settled two days after it (counted) and another quarter 45 days after it (past the 30-day window).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import report
from bench.phases import Bench, PhaseError, dunning
from bench.report import Row, Run

START = datetime(2026, 1, 5, 12, tzinfo=UTC)
LOCALES = ("en", "fr-FR", "de-DE", "sv-SE", "nl-NL", "ar-EG")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def expected(emails: int) -> dict[str, int]:
    """The overall counts the report must give for the ledger `ledger` writes."""
    groups = range(emails // 2)
    return {"sent": 2 * len(groups), "clicked": sum(1 for g in groups if g % 3 == 0),
            "settled": sum(1 for g in groups if g % 4 == 0)}


def ledger(database: Path, emails: int) -> None:
    """Write the ledger: accounts, emails and their notice keys, clicks, and the balance history."""
    from dunning import store

    store.connect(f"sqlite:///{database}").dispose()
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.executemany("INSERT INTO accounts (id, name, email, cc, locale, timezone, content_hash, segment) "
                         "VALUES (?, 'Bench', 'billing@customer.example', '[]', ?, 'UTC', '', ?)", _accounts(emails))
        conn.executemany("INSERT INTO emails (id, account_id, payment_method_id, notice, stage, locale, status, "
                         "attempts, fence, message_id, resent, created_at, updated_at) "
                         "VALUES (?, ?, ?, 'past_due', ?, ?, 'sent', 1, 1, ?, 0, ?, ?)", _emails(emails))
        conn.executemany("INSERT INTO notices (key, account_id, notice, outcome, email_id, created_at, as_of) "
                         "VALUES (?, ?, 'past_due', 'email', ?, ?, ?)", _notices(emails))
        conn.executemany("INSERT INTO link_clicks (key, email_id, purpose, clicked_at) "
                         "VALUES (?, ?, 'settlement', ?)", _clicks(emails))
        conn.executemany("INSERT INTO balance_history (account_id, payment_method_id, balance, previous, live, "
                         "changed_at) VALUES (?, ?, ?, ?, 1, ?)", _history(emails))


def _sent_at(group: int, stage: int) -> datetime:
    return START + timedelta(days=group % 280 + 7 * (stage - 1))


def _accounts(emails: int) -> Iterator[tuple]:
    for g in range(emails // 2):
        yield f"acct_{g}", LOCALES[g % len(LOCALES)], "smb" if g % 5 == 0 else None


def _emails(emails: int) -> Iterator[tuple]:
    for g in range(emails // 2):
        for stage in (1, 2):
            at = _stamp(_sent_at(g, stage))
            yield 2 * g + stage, f"acct_{g}", f"pm_{g}", stage, LOCALES[g % len(LOCALES)], f"<{g}.{stage}@b>", at, at


def _notices(emails: int) -> Iterator[tuple]:
    for g in range(emails // 2):
        for stage in (1, 2):
            at = _stamp(_sent_at(g, stage))
            yield f"past_due:acct_{g}:pm_{g}:x:{stage}", f"acct_{g}", 2 * g + stage, at, at


def _clicks(emails: int) -> Iterator[tuple]:
    for g in range(0, emails // 2, 3):
        yield f"past_due:acct_{g}:pm_{g}:x:2", 2 * g + 2, _stamp(_sent_at(g, 2) + timedelta(hours=3))


def _history(emails: int) -> Iterator[tuple]:
    for g in range(emails // 2):
        yield f"acct_{g}", f"pm_{g}", '{"EUR": "100.00"}', None, _stamp(_sent_at(g, 1) - timedelta(days=1))
        if g % 4 in (0, 1):
            later = timedelta(days=2 if g % 4 == 0 else 45)
            yield f"acct_{g}", f"pm_{g}", "{}", '{"EUR": "100.00"}', _stamp(_sent_at(g, 2) + later)


def run_report(bench: Bench, key: str, label: str, database: Path, emails: int, form: str) -> Row:
    """`dunning report --format FORM --out FILE` over the ledger; the JSON one's counts checked."""
    out = bench.workdir / f"report.{form}"
    measured, _ = bench.measure(label, dunning("report", "--format", form, "--out", str(out)),
                                bench.dunning_env(database))
    if measured.returncode != 0:
        raise PhaseError(measured.describe_failure())
    if form == "json":
        overall = json.loads(out.read_text(encoding="utf-8"))["overall"]
        found = {name: overall[name] for name in ("sent", "clicked", "settled")}
        bench.results.check(f"{label}: {found} (expected {expected(emails)})", found == expected(emails))
    else:
        bench.results.check(f"{label}: {out.stat().st_size:,} bytes of HTML with 4 charts",
                            out.read_text(encoding="utf-8").count('<figure class="chart"') == 4)
    row = Row(key, label, emails, "emails", (Run(measured),))
    bench.results.rows.append(row)
    return row


def recovery(bench: Bench, emails: int) -> None:
    """Write the ledger, then the report over it as JSON and as HTML."""
    database = bench.workdir / "recovery.sqlite3"
    bench.say(f"writing a ledger of {emails:,} sent emails …")
    ledger(database, emails)
    os.sync()  # as before the no-op run: the report is not measured against the ledger's pages being written back
    run_report(bench, report.REPORT, "`dunning report`, JSON", database, emails, "json")
    run_report(bench, report.REPORT_HTML, "`dunning report`, HTML", database, emails, "html")
