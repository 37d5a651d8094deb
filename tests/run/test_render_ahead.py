"""Emails rendered a chunk at a time ahead of their sends: an email that does not render is retried alone,
every other one goes out once, its batch grouped by notice and locale."""

from __future__ import annotations

import orjson
from sqlalchemy import create_engine, text

from dunning.cli import main
from dunning.run import render_ahead
from tests.run.conftest import AS_OF_TEXT, received_ids, run


def _poison_one_payload(url: str) -> int:
    """Give one queued past-due email a balance its template cannot write; its id."""
    engine = create_engine(url)
    with engine.begin() as conn:
        email_id, payload = conn.execute(text(
            "SELECT e.id, p.payload FROM emails e JOIN email_payloads p ON p.email_id = e.id "
            "WHERE e.notice = 'past_due' AND e.status = 'queued' ORDER BY e.id LIMIT 1")).one()
        values = orjson.loads(payload)
        values["context"]["balance"] = [{"amount": "1", "currency": 5}]
        conn.execute(text("UPDATE email_payloads SET payload = :p WHERE email_id = :id"),
                     {"p": orjson.dumps(values).decode(), "id": email_id})
    engine.dispose()
    return email_id


def test_an_email_that_does_not_render_is_retried_and_the_others_are_sent_once(billing, smtp, capsys,
                                                                              monkeypatch):
    """Chunks of 3 over a batch of dozens: the email whose render fails is recorded for a retry with the
    reason, the run's other emails are all received, once each, grouped by notice and locale (in the order
    claimed within a group), so that each chunk renders one template in a row."""
    monkeypatch.setattr(render_ahead, "CHUNK", 3)
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")
    monkeypatch.setenv("DUNNING_SMTP__CONCURRENCY", "1")
    capsys.readouterr()
    assert main(["run", "--no-deliver", "--json", "--as-of", AS_OF_TEXT]) == 0
    poisoned = _poison_one_payload(billing)
    code, summary = run(capsys)
    assert summary["sent"] >= 20 and summary["retried"] == 1 and summary["failed"] == 0
    received = received_ids(smtp)
    assert len(received) == len(set(received)) == summary["sent"]
    engine = create_engine(billing)
    with engine.connect() as conn:
        status, error = conn.execute(text("SELECT status, error FROM emails WHERE id = :id"),
                                     {"id": poisoned}).one()
        sent = list(conn.execute(text("SELECT notice, locale, message_id FROM emails WHERE status = 'sent' "
                                      "ORDER BY id")))
    engine.dispose()
    assert status == "retry" and "cannot render past_due" in error
    grouped = sorted(sent, key=lambda row: (row.notice, row.locale))   # stable: claim order within a group
    assert received == [row.message_id for row in grouped]
    assert len({row.notice for row in sent}) > 1 and len({(row.notice, row.locale) for row in sent}) > 2
