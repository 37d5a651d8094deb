"""`dunning run` against a misbehaving SMTP server: retried, failed, unknown, stopped, never twice."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from dunning import ledger, store
from dunning.delivery.capture import Fault
from dunning.run import job
from dunning.run.clock import ShiftedClock
from dunning.settings import load_settings
from tests.delivery.conftest import ManualTimers
from tests.run.conftest import AS_OF, planned, received_ids, run


def _statuses(url: str) -> Counter:
    with store.connect(url).connect() as conn:
        return Counter(conn.execute(select(store.emails.c.status)).scalars())


RETRY_BACKOFF = 60


def _retry_soon(monkeypatch) -> None:
    monkeypatch.setenv("DUNNING_DELIVERY__RETRY_BACKOFF_SECONDS", str(RETRY_BACKOFF))


def test_temporary_failures_are_retried_and_delivered_once(billing, smtp, capsys, monkeypatch):
    """421/451 at connect, MAIL, RCPT and after DATA leave the email for a retry that delivers it once."""
    _retry_soon(monkeypatch)
    for fault in (Fault("connect", 421), Fault("mail", 451), Fault("rcpt", 451), Fault("data", 451),
                  Fault("data", 421)):
        smtp.add_fault(fault)
    clock = ShiftedClock()
    code, first = run(capsys, clock=clock)
    assert first["sent"] + first["retried"] == first["planned"] and first["retried"] >= 3
    assert code == 75
    _code, early = run(capsys, clock=clock)
    assert early["sent"] == 0, "a retry went out before its backoff elapsed"
    clock.advance(RETRY_BACKOFF + 1)
    code, second = run(capsys, clock=clock)
    statuses = _statuses(billing)
    assert statuses["sent"] == first["planned"] and statuses["retry"] == 0, (statuses, second)
    assert all(count == 1 for count in Counter(received_ids(smtp)).values())


def test_permanent_failures_are_failed_and_not_retried(billing, smtp, capsys, monkeypatch):
    """550 at RCPT and 554 after DATA fail the email with the server's code and text; no retry follows."""
    _retry_soon(monkeypatch)
    alone = next(e for e in planned(capsys) if e["status"] == "send" and not e["cc"])
    smtp.add_fault(Fault("rcpt", 550, recipient=alone["to"][0]))
    smtp.add_fault(Fault("data", 554))
    clock = ShiftedClock()
    code, first = run(capsys, clock=clock)
    assert code == 1 and first["failed"] == 2 and first["sent"] == first["planned"] - 2
    with store.connect(billing).connect() as conn:
        failed = conn.execute(select(store.emails.c.code, store.emails.c.error)
                              .where(store.emails.c.status == "failed")).all()
    assert sorted(code for code, _ in failed) == [550, 554]
    assert all(error and ("5.1.1" in error or "5.6.0" in error) for _, error in failed)
    clock.advance(RETRY_BACKOFF + 1)
    sent_before = len(smtp.messages)
    _code, second = run(capsys, clock=clock)
    assert second["sent"] == 0 and len(smtp.messages) == sent_before


def test_one_refused_recipient_is_recorded_and_the_others_get_the_email(billing, smtp, capsys):
    """A cc address refused at RCPT is recorded with its code; the billing contact still gets the email."""
    with_cc = next(e for e in planned(capsys) if e["status"] == "send" and e["cc"])
    smtp.add_fault(Fault("rcpt", 550, recipient=with_cc["cc"][0]))
    code, summary = run(capsys)
    assert code == 0 and summary["sent"] == summary["planned"]
    (message,) = [m for m in smtp.messages if with_cc["to"][0] in m.recipients]
    assert with_cc["cc"][0] not in message.recipients
    with store.connect(billing).connect() as conn:
        refused = conn.execute(select(store.emails.c.refused).where(store.emails.c.refused.is_not(None))).scalars()
        (only,) = list(refused)
    assert with_cc["cc"][0] in only and "550" in only


def test_lost_final_reply_is_unknown_and_never_resent_under_hold(billing, smtp, capsys, monkeypatch):
    """A drop after the final dot, or a final reply slower than the timeout, is unknown; hold sends neither again."""
    monkeypatch.setenv("DUNNING_SMTP__DATA_TIMEOUT", "0.5")
    # One connection in the run's own process: when the clock moves, the held reply is the only one awaited.
    monkeypatch.setenv("DUNNING_SMTP__CONCURRENCY", "1")
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")
    smtp.add_fault(Fault("data", drop=True))
    late = Fault("data", 250, held=True)  # answered only after the client gave up on it
    smtp.add_fault(late)
    timers = ManualTimers()
    # The client arms its timeout as it writes the final dot: before the server holds the reply.
    mover = timers.advance_once(late.reached, 0.51)
    try:
        summary = job.run(load_settings(), as_of=AS_OF, timers=timers)
    finally:
        late.release()
        mover.join(10)
    code, first = summary.exit_code(), summary.as_dict()
    assert code == 1 and first["unknown"] == 2
    assert _statuses(billing)["unknown"] == 2
    held = Counter(received_ids(smtp))
    _code, second = run(capsys)
    assert second["sent"] == 0 and Counter(received_ids(smtp)) == held
    assert len(ledger.list_unknown(store.connect(billing))) == 2


def test_connection_dropped_before_mail_reconnects_and_delivers_once(billing, smtp, capsys):
    """A connection dropped before MAIL is reopened and the email delivered exactly once."""
    smtp.add_fault(Fault("mail", drop=True))
    code, summary = run(capsys)
    assert code == 0 and summary["sent"] == summary["planned"]
    assert all(count == 1 for count in Counter(received_ids(smtp)).values())


def test_server_down_stops_early_and_marks_nothing_sent(billing, capsys, monkeypatch):
    """With no server listening the run stops with a clear error; every email stays queued for the next run."""
    monkeypatch.setenv("DUNNING_SMTP__PORT", "9")  # discard port: nothing listens on loopback here
    monkeypatch.setenv("DUNNING_SMTP__CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("DUNNING_SMTP__RECONNECT_SECONDS", "0")  # no outage ridden out (tests/run/test_reconnect.py)
    code, summary = run(capsys)
    err = capsys.readouterr().err
    assert code == 75 and summary["sent"] == 0 and summary["stopped"]
    assert "127.0.0.1" in summary["stopped"]
    statuses = _statuses(billing)
    assert statuses["queued"] == summary["planned"] and statuses["sent"] == 0 and statuses["sending"] == 0
    del err


def test_unknown_is_resent_once_with_the_same_message_id_under_resend(billing, smtp, capsys, monkeypatch):
    """With delivery.unknown = resend, an email whose final reply was lost goes out once more, same Message-ID."""
    monkeypatch.setenv("DUNNING_DELIVERY__UNKNOWN", "resend")
    smtp.add_fault(Fault("data", drop=True))
    code, first = run(capsys)
    assert code == 1 and first["unknown"] == 1
    lost = received_ids(smtp)[0]  # the drop fault hits the first message, which the server kept
    code, second = run(capsys)
    assert code == 0 and second["sent"] == 1
    counts = Counter(received_ids(smtp))
    assert counts[lost] == 2 and sum(counts.values()) == len(counts) + 1
    assert _statuses(billing) == Counter({"sent": first["planned"]})
    _code, third = run(capsys)
    assert third["sent"] == 0 and Counter(received_ids(smtp)) == counts
