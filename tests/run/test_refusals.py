"""Every check that can refuse a run refuses it before anything is written to the ledger."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from dunning import store
from dunning.cli import main
from tests.conftest import REPO
from tests.run.conftest import AS_OF_TEXT


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
