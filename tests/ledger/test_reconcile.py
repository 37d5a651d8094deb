"""dunning reconcile: an operator lists unknown emails, marks them sent, or releases them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dunning import ledger
from dunning.cli import main

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def unknown(engine, sends, database_url, monkeypatch) -> list[int]:
    """Three emails whose worker crashed while their data went out, now unknown; the command uses the same database."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", database_url)
    ledger.enqueue(engine, sends(4), now=T0)
    claims = ledger.claim(engine, worker="host:1", limit=3, now=T0, lease_seconds=60)
    ledger.record(engine, [], now=T0, max_attempts=3, backoff_seconds=60,
                  in_flight=[(c.email_id, c.fence) for c in claims])
    ledger.expire_leases(engine, now=T0 + timedelta(minutes=5), unknown_policy="hold")
    return [c.email_id for c in claims]


def test_list_shows_each_unknown_email(unknown, capsys):
    """The list names each unknown email with its account, notice, keys, Message-ID and since when."""
    assert main(["reconcile"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(i) for i in unknown]
    assert lines[0].split("\t")[1:] == ["acct_0", "past_due", "past_due:acct_0:pm_0:2026-11-01:1",
                                        "<past_due.0@billing.example>", "since 2026-11-20T09:05:00+00:00"]


def test_list_as_json(unknown, capsys):
    """--list --json prints one object per unknown email."""
    assert main(["reconcile", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [item["id"] for item in listed] == unknown
    assert listed[1] | {"error": None} == {
        "id": unknown[1], "account": "acct_1", "notice": "past_due", "keys": ["past_due:acct_1:pm_1:2026-11-01:1"],
        "message_id": "<past_due.1@billing.example>", "since": "2026-11-20T09:05:00+00:00", "resent": False,
        "error": None}


def test_mark_sent_and_release(unknown, engine, capsys):
    """Marked emails become sent for good; released ones are queued again with their Message-ID."""
    first, second, third = unknown
    assert main(["reconcile", "--mark-sent", str(first), "--release", str(second), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"marked_sent": [first], "released": [second]}
    assert [u.email_id for u in ledger.list_unknown(engine)] == [third]
    summary = ledger.summary(engine)
    assert (summary["sent"], summary["queued"], summary["unknown"]) == (1, 2, 1)
    later = T0 + timedelta(hours=1)
    claimed = ledger.claim(engine, worker="w", limit=10, now=later, lease_seconds=60)
    assert second in [c.email_id for c in claimed]
    assert {c.message_id for c in claimed if c.email_id == second} == {"<past_due.1@billing.example>"}
    assert first not in [c.email_id for c in claimed]


def test_unknown_ids_are_refused_and_change_nothing(unknown, engine, capsys):
    """An id that is not an unknown email makes the command fail, naming it, without changing the others."""
    missing = 424242
    assert main(["reconcile", "--mark-sent", str(unknown[0]), str(missing)]) == 65
    err = capsys.readouterr().err
    assert str(missing) in err and "nothing changed" in err
    assert main(["reconcile", "--mark-sent", str(unknown[0])]) == 0
    assert main(["reconcile", "--release", str(unknown[0])]) == 65  # already marked sent
    assert main(["reconcile", "--mark-sent", str(unknown[1]), "--release", str(unknown[1])]) == 65
    assert [u.email_id for u in ledger.list_unknown(engine)] == unknown[1:]


def test_empty_list_says_so(engine, database_url, monkeypatch, capsys):
    """With nothing unknown, the list says so and exits 0."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", database_url)
    assert main(["reconcile"]) == 0
    assert "no emails with an unknown outcome" in capsys.readouterr().out
