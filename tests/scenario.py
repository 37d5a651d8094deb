"""Billing state for the links' landing and the report: accounts with a failed charge or a past-due invoice."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from dunning import store
from dunning.billing import importer
from dunning.run import job
from dunning.run.summary import RunSummary
from dunning.settings import Settings

AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)  # 13:00 in Paris, 14:00 in Cairo: inside the send window


def account(n: int, locale: str = "fr-FR", timezone: str = "Europe/Paris", *, due: str = "2026-11-25",
            currency: str = "EUR", total: str = "100.00", paid: bool = False, segment: str | None = None) -> dict:
    """Account acct_n: one card (pm_n) paying one subscription whose open invoice's charge failed this morning."""
    line = {
        "id": f"acct_{n}", "name": f"Company {n}", "email": f"billing{n}@example.com", "locale": locale,
        "timezone": timezone,
        "payment_methods": [{"id": f"pm_{n}", "type": "card", "brand": "visa", "last4": "4242", "exp_month": 3,
                             "exp_year": 2028}],
        "subscriptions": [{"id": f"sub_{n}", "name": "Cloud", "payment_method": f"pm_{n}",
                           "status": "active" if paid else "past_due"}],
        "invoices": [{"id": f"inv_{n}", "subscription": f"sub_{n}", "currency": currency, "total": total,
                      "amount_paid": total if paid else "0", "issued_date": "2026-11-01", "due_date": due,
                      "status": "paid" if paid else "open"}],
        "charges": [{"id": f"ch_{n}", "invoice": f"inv_{n}", "payment_method": f"pm_{n}",
                     "attempted_at": "2026-11-20T06:00:00Z", "outcome": "failed",
                     "failure_code": "insufficient_funds"}],
    }
    if segment:
        line["segment"] = segment
    return line


def import_accounts(url: str, accounts: list[dict], as_of: datetime) -> None:
    """Import these account lines, their balance changes dated as_of."""
    data = b"".join(json.dumps(a).encode() + b"\n" for a in accounts)
    summary = importer.import_stream(store.connect(url), io.BytesIO(data), batch_size=50, as_of=as_of)
    assert summary.rejected == 0


def run_job(settings: Settings, as_of: datetime) -> RunSummary:
    """`dunning run` at as_of, in a thread of its own: a test's browser may hold this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(job.run, settings, as_of=as_of).result()
