"""The lifecycle notices through a real store: index-range candidates, the ledger's history, pause, segments."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from dunning import ledger, store
from dunning.billing import importer
from dunning.planning import candidates
from dunning.settings import Settings

from .builders import LOCALES, account, card, invoice, scoped

AS_OF = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # stage 1 of cards expiring in December 2026
EXPIRING = "card_expiring:acct_soon:pm_1_soon:2026-12:1"
DUNNED = "past_due:acct_paying:pm_1_paying:2026-11-20:1"


def _lines() -> list[dict]:
    return [scoped(line, line["id"].removeprefix("acct")) for line in (
        account("acct_soon", methods=[card(expires="2026-12")], invoices=[]),
        account("acct_later", methods=[card(expires="2027-02")], invoices=[]),
        account("acct_paused", methods=[card(expires="2026-12")], invoices=[],
                paused_until="2026-12-10T00:00:00Z"),
        account("acct_paying", invoices=[invoice(due="2026-11-20")], segment="unheard-of"),
    )]


def _import(engine, lines: list[dict]) -> None:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    summary = importer.import_stream(engine, io.BytesIO(data), batch_size=2)
    assert summary.rejected == 0


def _candidates(engine, as_of: datetime, *, include_paused: bool = True) -> set[str]:
    with engine.connect() as conn:
        return {i for batch in candidates.candidate_batches(conn, as_of, Settings(), include_paused=include_paused)
                for i in batch}


def _entry(account_id: str, notice: str, key: str, status: str = "send") -> ledger.OutboxEntry:
    return ledger.OutboxEntry(account=account_id, payment_method=key.split(":")[2], notice=notice, stage=1,
                              locale="fr-FR", status=status, keys=(key,), message_id=f"<{key}@billing.example>",
                              payload={"to": ["billing@example.com"]})


@pytest.fixture
def engine(database_url: str):
    """A migrated store holding the four accounts above."""
    engine = store.connect(database_url)
    _import(engine, _lines())
    yield engine
    engine.dispose()


def test_expiring_cards_are_found_by_their_expiry_month_until_their_stage_is_held(engine):
    """A card in its stage window is a candidate, a card expiring later is not, and neither once the key is held."""
    assert _candidates(engine, AS_OF) == {"acct_soon", "acct_paused", "acct_paying"}
    ledger.enqueue(engine, [_entry("acct_soon", "card_expiring", EXPIRING)], now=AS_OF)
    assert "acct_soon" not in _candidates(engine, AS_OF)
    assert "acct_soon" in _candidates(engine, datetime(2026, 12, 25, 9, tzinfo=UTC))  # stage 2 is not held


def test_a_run_leaves_paused_accounts_out_and_a_plan_lists_them_paused(engine):
    """Paused accounts are not candidates of a run; the plan shows their entries as paused until the pause ends."""
    assert "acct_paused" not in _candidates(engine, AS_OF, include_paused=False)
    assert "acct_paused" in _candidates(engine, datetime(2026, 12, 10, 9, tzinfo=UTC), include_paused=False)
    planned = [p for batch in candidates.iter_plan(engine, AS_OF, Settings(), LOCALES) for p in batch
               if p.account == "acct_paused"]
    assert [(p.notice, p.status) for p in planned] == [("card_expiring", "paused")]


def test_a_sent_dunning_key_brings_the_settled_group_its_confirmation_once(engine):
    """A past_due email sent, then the invoice paid: the group is found from the ledger and confirmed once."""
    recorded_at = datetime(2026, 11, 21, 9, tzinfo=UTC)
    ledger.enqueue(engine, [_entry("acct_paying", "past_due", DUNNED)], now=AS_OF, as_of=recorded_at)
    (claimed,) = ledger.claim(engine, worker="w", limit=1, now=AS_OF, lease_seconds=60)
    with engine.connect() as conn:
        assert ledger.key_history(conn, ["acct_paying"]).sent == {}  # queued, not sent: nothing to confirm
    ledger.record(engine, [ledger.Result(claimed.email_id, claimed.fence, "sent")], now=AS_OF, max_attempts=3,
                  backoff_seconds=1)
    with engine.connect() as conn:
        assert ledger.key_history(conn, ["acct_paying"]).sent == {"acct_paying": {DUNNED: recorded_at}}
    paid = scoped(account("acct_paying", invoices=[invoice(due="2026-11-20", status="paid", paid="100.00")],
                          segment="unheard-of"), "_paying")
    _import(engine, [paid])
    planned = [p for batch in candidates.iter_plan(engine, AS_OF, Settings(), LOCALES) for p in batch
               if p.account == "acct_paying"]
    assert [(p.notice, p.status, p.keys) for p in planned] == [
        ("balance_settled", "send", (f"balance_settled:{DUNNED}",))]
    assert "acct_paying" not in _candidates(engine, recorded_at + timedelta(days=31))  # too old to answer
    ledger.enqueue(engine, [_entry("acct_paying", "balance_settled", f"balance_settled:{DUNNED}")], now=AS_OF)
    assert "acct_paying" not in _candidates(engine, AS_OF)


def test_an_unknown_segment_is_warned_about_once_per_plan(engine, caplog):
    """An account whose segment has no section gets the defaults, and the plan warns once naming the segment."""
    caplog.set_level(logging.WARNING, logger="dunning.planning.candidates")
    for _ in candidates.iter_plan(engine, datetime(2026, 11, 21, 9, tzinfo=UTC), Settings(), LOCALES):
        pass
    warnings = [r.getMessage() for r in caplog.records if "unheard-of" in r.getMessage()]
    assert len(warnings) == 1 and "[segments.unheard-of]" in warnings[0]


def test_finding_candidates_reads_index_entries_alone(tmp_path):
    """Every range over the billing tables is answered by its index: no table row is read to find candidates
    (over a million accounts, reading a row per paused account's invoice was most of a no-op run)."""
    engine = store.connect(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    _import(engine, _lines())
    query = candidates.candidate_query(AS_OF, Settings(), include_paused=False)
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        steps = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    billing = ("accounts", "payment_methods", "subscriptions", "invoices", "charges")
    reads = [step for step in steps if step.split()[:1] in (["SEARCH"], ["SCAN"]) and step.split()[1] in billing]
    assert {step.split()[1] for step in reads} == set(billing)
    assert all(step.startswith("SEARCH") and " USING COVERING INDEX " in step for step in reads), reads
    engine.dispose()
