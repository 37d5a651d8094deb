"""The exit code and the summary describe the queue as a run leaves it, not only what this run did."""

from __future__ import annotations

from dunning.cli import main
from dunning.delivery.capture import Fault
from tests.run.conftest import run


def test_retries_waiting_from_an_earlier_run_keep_the_exit_code_at_75(billing, smtp, capsys):
    """A run that finds a retry still waiting (its backoff not over) sends nothing and exits 75, saying so."""
    smtp.add_fault(Fault("rcpt", 451))
    code, first = run(capsys)
    assert code == 75 and first["waiting"] == 1 and first["retried"] == 1
    code, second = run(capsys)
    assert code == 75 and (second["planned"], second["sent"], second["waiting"]) == (0, 0, 1)


def test_unknown_held_from_an_earlier_run_keeps_the_exit_code_at_1(billing, smtp, capsys):
    """An email held unknown by an earlier run makes the next run exit 1 too, listed as held."""
    smtp.add_fault(Fault("data", drop=True))
    code, first = run(capsys)
    assert code == 1 and first["unknown"] == 1 and first["held"] == 1
    code, second = run(capsys)
    assert code == 1 and (second["unknown"], second["held"], second["sent"]) == (0, 1, 0)


def test_under_resend_an_unknown_email_delivered_again_is_no_longer_reported(billing, smtp, capsys, monkeypatch):
    """Under resend, the next run sends the unknown email once more; delivered, it is neither unknown nor held."""
    monkeypatch.setenv("DUNNING_DELIVERY__UNKNOWN", "resend")
    smtp.add_fault(Fault("data", drop=True))
    code, first = run(capsys)
    assert code == 1 and first["held"] == 1
    code, second = run(capsys)
    assert code == 0 and (second["sent"], second["unknown"], second["held"]) == (1, 0, 0)


def test_plan_on_an_empty_store_says_the_store_is_empty(database_url, monkeypatch, capsys):
    """`dunning plan` on a store without accounts says so, and how to fill it, besides "nothing is due"."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", database_url)
    assert main(["plan"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "nothing is due"
    assert "no accounts yet" in captured.err and "dunning import" in captured.err


def test_plan_with_accounts_none_due_says_only_that_nothing_is_due(billing, capsys):
    """With accounts in the store, an empty plan does not claim that the store is empty."""
    assert main(["plan", "--as-of", "2020-01-01T00:00:00Z"]) == 0
    assert "no accounts yet" not in capsys.readouterr().err
