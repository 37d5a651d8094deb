"""Every check that can refuse a run refuses it before anything is written to the ledger."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from dunning import store
from dunning.cli import main
from tests.conftest import REPO
from tests.run.conftest import AS_OF_TEXT, load_sample


def _written(url: str) -> tuple[int, int]:
    """Emails and notice keys in the ledger."""
    with store.connect(url).connect() as conn:
        return (conn.execute(select(func.count()).select_from(store.emails)).scalar_one(),
                conn.execute(select(func.count()).select_from(store.notices)).scalar_one())


def _broken_templates(tmp_path, monkeypatch) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates" / "emails", templates)
    (templates / "past_due.txt").write_text((templates / "past_due.txt").read_text() + "\n{% if %}\n")
    monkeypatch.setenv("DUNNING_I18N__TEMPLATES_DIR", str(templates))


REFUSALS = {
    "plain text to a remote host": ({"DUNNING_SMTP__HOST": "mail.example.com", "DUNNING_SMTP__TLS": "none"}, 78,
                                    'smtp.tls = "none"'),
    "no signing key": ({"DUNNING_LINKS__KEYS": ""}, 78, "DUNNING_LINKS__KEYS"),
    "a username without a password": ({"DUNNING_SMTP__USERNAME": "dunning"}, 78, "DUNNING_SMTP__PASSWORD"),
    "a CA file that cannot be read": ({"DUNNING_SMTP__TLS": "starttls", "DUNNING_SMTP__CA_FILE": "/nonexistent/ca.pem"},
                                      78, "smtp.ca_file"),
    "a template that does not compile": ({}, 65, "past_due"),
    "a setting that is not JSON": ({"DUNNING_PAST_DUE__DAYS_AFTER_DUE": "1,7"}, 78, "written as JSON"),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refused_run_writes_nothing(name, billing, smtp, monkeypatch, capsys, tmp_path):
    """The run stops with its exit code and a message naming the cause, and the ledger stays empty."""
    environment, code, message = REFUSALS[name]
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    if name == "a template that does not compile":
        _broken_templates(tmp_path, monkeypatch)
    assert main(["run", "--as-of", AS_OF_TEXT]) == code
    assert message in capsys.readouterr().err
    assert _written(billing) == (0, 0)


def _statuses(url: str) -> dict[str, int]:
    with store.connect(url).connect() as conn:
        return dict(conn.execute(select(store.emails.c.status, func.count()).group_by(store.emails.c.status)).all())


def test_a_run_with_nothing_to_do_reads_the_store_and_ends_without_the_templates(database_url, smtp, monkeypatch,
                                                                                 tmp_path):
    """Accounts with nothing due are no candidates: with the outbox empty too, the run neither compiles the
    templates (broken here) nor writes. `dunning lint` is what checks templates on their own."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", database_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "test-signing-key")
    load_sample(database_url, 40, mix="none-due")
    _broken_templates(tmp_path, monkeypatch)
    assert main(["run", "--as-of", AS_OF_TEXT]) == 0
    assert smtp.messages == [] and _statuses(database_url) == {}
    load_sample(database_url, 5)  # some due now: candidates, so the templates are checked and refuse the run
    assert main(["run", "--as-of", AS_OF_TEXT]) == 65
    assert smtp.messages == [] and _statuses(database_url) == {}


def test_emails_left_in_the_outbox_make_the_run_check_its_templates_before_it_writes(billing, smtp, monkeypatch,
                                                                                     capsys, tmp_path):
    """With nothing new due but emails still queued, a broken template refuses the run before any write."""
    assert main(["run", "--as-of", AS_OF_TEXT, "--no-deliver"]) == 0
    queued = _statuses(billing)
    assert queued.get("queued", 0) > 0
    _broken_templates(tmp_path, monkeypatch)
    assert main(["run", "--as-of", AS_OF_TEXT]) == 65
    assert "past_due" in capsys.readouterr().err
    assert smtp.messages == [] and _statuses(billing) == queued
