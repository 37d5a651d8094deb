"""`dunning run` end to end: a real database, a real SMTP server on loopback, the ledger's guarantees."""

from __future__ import annotations

import gc
from collections import Counter
from datetime import datetime

from sqlalchemy import select

from dunning import store
from dunning.cli import main
from dunning.delivery.capture import CaptureServer
from dunning.run import job
from dunning.run.collector import COLLECT_EVERY
from dunning.settings import load_settings
from tests.run.conftest import AS_OF_TEXT, expected_message_ids, planned, received_ids, run


def test_full_run_sends_exactly_the_plan_then_nothing_twice(billing, smtp, capsys):
    """A run sends every planned email once; the same run again sends nothing."""
    plan = planned(capsys)
    sends = [entry for entry in plan if entry["status"] == "send"]
    assert len(sends) >= 20
    code, summary = run(capsys)
    assert code == 0 and summary["sent"] == summary["planned"] == len(sends)
    assert sorted(received_ids(smtp)) == sorted(expected_message_ids(plan))
    envelopes = sorted(sorted(m.recipients) for m in smtp.messages)
    assert envelopes == sorted(sorted(e["to"] + e["cc"]) for e in sends)
    assert any(e["cc"] for e in sends)
    code, again = run(capsys)
    assert code == 0 and again["sent"] == again["planned"] == 0
    assert len(smtp.messages) == len(sends)


def test_later_run_sends_only_new_keys(billing, smtp, capsys):
    """A run at a later as_of sends only keys that became due since, never the ones already sent."""
    run(capsys)
    first = Counter(received_ids(smtp))
    later = "2026-11-27T12:00:00Z"
    plan_later = planned(capsys, later)
    code, summary = run(capsys, "--as-of", later)
    assert code == 0 and summary["sent"] == len([e for e in plan_later if e["status"] == "send"]) > 0
    after = Counter(received_ids(smtp))
    assert all(count == 1 for count in after.values())
    assert set(after) - set(first) == expected_message_ids(plan_later)


def test_every_message_parses_back_as_a_complete_email(billing, smtp, capsys):
    """Each message delivered is multipart/alternative text + HTML with the headers a notice needs."""
    run(capsys)
    assert smtp.messages
    for message in smtp.messages:
        parsed = message.parsed()
        assert parsed["From"].addresses[0].addr_spec == "billing@example.com"
        assert {a.addr_spec for a in parsed["To"].addresses} <= set(message.recipients)
        assert parsed["Subject"] and parsed["Date"] and parsed["Auto-Submitted"] == "auto-generated"
        assert parsed.get_content_type() == "multipart/alternative"
        text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
        # card_expiring links to the payment-method update page instead of the settlement page.
        assert ("https://billing.example.com/settle/" in text.get_content()
                or "https://billing.example.com/payment-method/" in text.get_content())
        assert "<html" in html.get_content()


def test_localized_emails_go_8bit_to_a_server_that_takes_it(billing, smtp, capsys):
    """Emails in other languages travel as UTF-8 (8bit, BODY=8BITMIME) and parse back to the same text."""
    run(capsys)
    eight_bit = [m for m in smtp.messages if not m.data.isascii()]
    assert eight_bit and all("BODY=8BITMIME" in m.mail_options for m in eight_bit)
    for message in eight_bit:
        parts = list(message.parsed().iter_parts())
        assert "8bit" in {p["Content-Transfer-Encoding"] for p in parts}
        assert all(p.get_content() for p in parts)


def test_a_server_without_8bitmime_or_pipelining_gets_every_email_in_7bit(billing, capsys, monkeypatch):
    """To a server that announces neither 8BITMIME nor PIPELINING, the whole plan still goes, all 7-bit."""
    with CaptureServer(port=0, eight_bit=False, pipelining=False) as server:
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(server.port))
        plan = planned(capsys)
        code, summary = run(capsys)
        assert code == 0 and summary["sent"] == len(server.messages) > 0
        assert sorted(received_ids(server)) == sorted(expected_message_ids(plan))
        assert all(m.data.isascii() and not any(o.startswith("BODY") for o in m.mail_options)
                   for m in server.messages)


def test_dry_run_records_and_sends_nothing(billing, smtp, capsys):
    """--dry-run counts what would be sent but writes no ledger row and sends no mail."""
    code, summary = run(capsys, "--as-of", AS_OF_TEXT, "--dry-run")
    assert code == 0 and summary["planned"] > 0 and summary["sent"] == 0
    assert smtp.messages == []
    with store.connect(billing).connect() as conn:
        assert conn.execute(select(store.notices.c.key)).first() is None


def test_dry_run_needs_no_signing_key(billing, smtp, capsys, monkeypatch):
    """--dry-run signs no link, so it counts the plan without DUNNING_LINKS__KEYS and leaves the ledger empty."""
    monkeypatch.delenv("DUNNING_LINKS__KEYS")
    code, summary = run(capsys, "--as-of", AS_OF_TEXT, "--dry-run")
    assert code == 0 and summary["planned"] > 0 and summary["sent"] == 0
    with store.connect(billing).connect() as conn:
        assert conn.execute(select(store.notices.c.key)).first() is None


def test_run_refuses_to_start_without_a_signing_key(billing, smtp, capsys, monkeypatch):
    """Without DUNNING_LINKS__KEYS the run stops before doing anything and says which variable to set."""
    monkeypatch.delenv("DUNNING_LINKS__KEYS")
    assert main(["run", "--as-of", AS_OF_TEXT]) == 78
    assert "DUNNING_LINKS__KEYS" in capsys.readouterr().err
    assert smtp.messages == []


def test_progress_lines_and_human_summary(billing, smtp, capsys):
    """Without --json the run prints one readable summary line."""
    assert main(["run", "--as-of", AS_OF_TEXT]) == 0
    out = capsys.readouterr().out
    assert "planned," in out and " sent," in out and "deferred" in out


def test_the_cycle_collector_runs_less_often_during_a_run_only(billing, smtp):
    """While a run plans and sends, the collector waits for COLLECT_EVERY new objects and leaves the objects
    the delivery processes were forked with alone; afterwards both are as before."""
    before = gc.get_threshold()
    seen: set[tuple[int, bool]] = set()
    summary = job.run(load_settings(), as_of=datetime.fromisoformat(AS_OF_TEXT.replace("Z", "+00:00")),
                      progress=lambda what, n: seen.add((gc.get_threshold()[0], gc.get_freeze_count() > 0)))
    assert summary.sent > 0 and seen == {(COLLECT_EVERY, True)} and before[0] != COLLECT_EVERY
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
