"""A template whose loop would run 10^10 times is stopped by i18n.render_seconds in every command that renders:
lint and preview report it in one line, a run refuses before it writes or sends, the studio shows it and
renders again once the file is fixed."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dunning import store
from dunning.cli import main
from dunning.emails.studio.server import StudioServer
from dunning.settings import Settings
from tests.run.conftest import AS_OF_TEXT, billing, run, smtp
from tests.studio.conftest import capture, settings, tree
from tests.studio.test_guards import request

__all__ = ["billing", "smtp", "capture", "settings", "tree"]  # fixtures used by name

REPO = Path(__file__).resolve().parents[2]
ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"  # 10^10 turns
SECONDS = 0.2
SAYS = f"past_due: rendering took longer than {SECONDS:g} s (i18n.render_seconds)"


def _endless(templates: Path) -> str:
    """Put the endless loop into past_due's text template; the template as shipped."""
    text = templates / "past_due.txt"
    shipped = text.read_text()
    text.write_text(shipped.replace("{% block content %}", "{% block content %}" + ENDLESS, 1))
    return shipped


@pytest.fixture
def endless(tmp_path, monkeypatch) -> Path:
    """A copy of the templates and catalogs, past_due's looping for ever, named by the settings with a short limit."""
    templates, locales = tmp_path / "templates", tmp_path / "locales"
    shutil.copytree(REPO / "templates" / "emails", templates)
    shutil.copytree(REPO / "locales", locales)
    _endless(templates)
    monkeypatch.setenv("DUNNING_I18N__TEMPLATES_DIR", str(templates))
    monkeypatch.setenv("DUNNING_I18N__LOCALES_DIR", str(locales))
    monkeypatch.setenv("DUNNING_I18N__RENDER_SECONDS", str(SECONDS))
    return templates


def test_lint_stops_the_loop_and_names_the_template_in_one_line(endless, capsys):
    """Every locale and scenario of the notice would take the limit: the first one is stopped, and reported alone."""
    started = time.monotonic()
    assert main(["lint"]) == 1
    assert time.monotonic() - started < 30
    lines = capsys.readouterr().out.splitlines()
    slow = [line for line in lines if "i18n.render_seconds" in line]
    assert len(slow) == 1 and slow[0].startswith(f"{endless.name}/past_due.mjml: {SAYS}"), lines


def test_preview_stops_the_loop_writes_the_other_emails_and_says_it_once(endless, tmp_path, capsys):
    started = time.monotonic()
    assert main(["preview", "--out", str(tmp_path / "gallery")]) == 1
    assert time.monotonic() - started < 30
    captured = capsys.readouterr()
    said = [line for line in captured.err.splitlines() if "i18n.render_seconds" in line]
    assert len(said) == 1 and SAYS in said[0] and "more emails)" in said[0], captured.err
    assert "wrote 90 of 120 emails" in captured.out
    assert not list((tmp_path / "gallery" / "emails" / "past_due").rglob("*.eml"))
    assert list((tmp_path / "gallery" / "emails" / "card_charge_failed").rglob("*.eml"))


def test_a_run_refuses_the_template_before_it_writes_or_sends_anything(endless, billing, smtp, capsys):
    assert main(["run", "--json", "--as-of", AS_OF_TEXT]) == 65
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip().splitlines()[-1].endswith(
        f"{SAYS}: a loop in its template that does not end?"), captured.err
    assert smtp.messages == []
    with store.connect(billing, migrate=False).connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.emails)).scalar() == 0


def test_a_run_stops_at_the_first_email_out_of_time_when_no_sample_tried_it(endless, billing, smtp, capsys):
    """With no sample scenarios nothing is tried up front: the first past_due email out of time stops the run
    (exit 65, naming the email and the setting); no past_due email is sent, each stays queued for a rerun."""
    shutil.rmtree(endless / "scenarios")
    started = time.monotonic()
    code, summary = run(capsys)
    assert time.monotonic() - started < 30
    assert code == 65 and "past_due" in summary["stopped"] and SAYS in summary["stopped"], summary
    assert "it stays queued" in summary["stopped"]
    with store.connect(billing, migrate=False).connect() as conn:
        rows = conn.execute(select(store.emails.c.status, store.emails.c.message_id)
                            .where(store.emails.c.notice == "past_due")).all()
    assert rows and {status for status, _ in rows} == {"queued"}
    assert not {message_id for _, message_id in rows} & {m.parsed()["Message-ID"] for m in smtp.messages}


def _view(studio: StudioServer) -> dict:
    status, body = request(studio, "GET", "/api/view?scenario=past_due--stage-1-card")
    assert status == 200
    return json.loads(body)


def test_the_studio_shows_the_stopped_render_answers_meanwhile_and_renders_the_fixed_file(settings: Settings,
                                                                                         tree: Path):
    """The studio's own server over HTTP: each locale's email is the error, other requests are answered,
    and once the file is saved fixed the render lock is free again and the next view renders."""
    limited = settings.model_copy(update=dict(i18n=settings.i18n.model_copy(update=dict(render_seconds=SECONDS))))
    templates = tree / "templates" / "emails"
    shipped = _endless(templates)
    with StudioServer(limited, port=0) as studio:
        started = time.monotonic()
        view = _view(studio)
        assert time.monotonic() - started < 10   # one render stopped; the other locales fail at once
        assert view["emails"] and all(SAYS in email["error"] for email in view["emails"]), view
        status, body = request(studio, "GET", "/api/index")
        assert status == 200 and "past_due--stage-1-card" in body.decode()
        status, body = request(studio, "GET", "/api/lint?scenario=past_due--stage-1-card")
        assert status == 200 and SAYS in body.decode()
        (templates / "past_due.txt").write_text(shipped)
        fixed = _view(studio)
        assert all("error" not in email and email["text"] for email in fixed["emails"]), fixed


def test_the_studio_answers_other_requests_while_a_render_runs_out_of_time(settings: Settings, tree: Path):
    """A page and a source file are served while the view's render runs toward its limit in a worker thread."""
    limited = settings.model_copy(update=dict(i18n=settings.i18n.model_copy(update=dict(render_seconds=2.0))))
    _endless(tree / "templates" / "emails")
    with StudioServer(limited, port=0) as studio, ThreadPoolExecutor(1) as pool:
        viewing = pool.submit(_view, studio)
        assert request(studio, "GET", "/")[0] == 200
        status, body = request(studio, "GET", "/source/templates/past_due.txt")
        assert status == 200 and b"range(100000)" in body
        assert not viewing.done()
        assert all("rendering took longer than 2 s" in email["error"] for email in viewing.result()["emails"])
