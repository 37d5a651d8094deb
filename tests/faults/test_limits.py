"""Limits on hostile input: a line of any length is read in bounded memory and rejected alone."""

from __future__ import annotations

import io
import shutil
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dunning import store
from dunning.billing import importer, sample
from dunning.cli import main
from dunning.emails.render import Renderer
from dunning.emails.scenarios import load_scenarios
from dunning.errors import EmailTooLarge
from tests.run.conftest import AS_OF, AS_OF_TEXT, billing, load_sample, run, smtp

__all__ = ["billing", "smtp"]  # the fixtures of the run tests, used here by name

REPO = Path(__file__).resolve().parents[2]
LIMIT = 64 * 1024
HUGE = 20 * 1024 * 1024


def _hostile_file(path: Path) -> Path:
    """Two good accounts around a line of HUGE bytes, then a last line as long without its newline."""
    buffer = io.StringIO()
    sample.write_jsonl(buffer, sample.generate(2, AS_OF))
    first, second = buffer.getvalue().splitlines(keepends=True)
    with path.open("wb") as file:
        file.write(first.encode())
        for _ in range(2):
            file.write(b'{"id": "' + b"x" * HUGE + b'"}\n' if _ == 0 else second.encode())
        file.write(b"[" + b"1," * (HUGE // 2))
    return path


def test_a_line_past_the_limit_is_rejected_alone_in_bounded_memory(tmp_path, sqlite_url):
    path = _hostile_file(tmp_path / "state.jsonl")
    engine = store.connect(sqlite_url)
    rejected: list[str] = []
    warm_up = io.StringIO()  # the data and caches every import loads once (currencies, statements)
    sample.write_jsonl(warm_up, sample.generate(2, AS_OF))
    importer.import_stream(engine, io.BytesIO(warm_up.getvalue().encode()), batch_size=10)
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            summary = importer.import_stream(engine, stream, batch_size=10, max_line_bytes=LIMIT,
                                             on_error=lambda error: rejected.append(str(error)))
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.unchanged == 2 and summary.rejected == 2
    assert rejected == [f"line 2: longer than {LIMIT} bytes (database.max_line_bytes): skipped",
                        f"line 4: longer than {LIMIT} bytes (database.max_line_bytes): skipped"]
    assert peak < HUGE // 5, peak  # neither line was ever held whole
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.accounts)).scalar() == 2


def test_the_import_command_takes_its_limit_from_the_settings(tmp_path, sqlite_url, monkeypatch, capsys):
    path = _hostile_file(tmp_path / "state.jsonl")
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    monkeypatch.setenv("DUNNING_DATABASE__MAX_LINE_BYTES", str(LIMIT))
    assert main(["import", "--json", str(path)]) == 65
    captured = capsys.readouterr()
    assert '"imported": 2' in captured.out and '"rejected": 2' in captured.out
    assert f"rejected: line 2: longer than {LIMIT} bytes" in captured.err


def test_a_template_whose_sample_passes_the_largest_message_is_refused_before_anything_is_written(
        billing, smtp, capsys, monkeypatch):
    """Every sample scenario passes a 5,000-byte limit: the run is refused up front (exit 65, one line naming the
    notice and the setting), nothing is enqueued or sent."""
    monkeypatch.setenv("DUNNING_DELIVERY__MAX_MESSAGE_BYTES", "5000")
    assert main(["run", "--json", "--as-of", AS_OF_TEXT]) == 65
    captured = capsys.readouterr()
    assert captured.out == "" and "(delivery.max_message_bytes)" in captured.err.strip().splitlines()[-1]
    assert smtp.messages == []
    with store.connect(billing, migrate=False).connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.emails)).scalar() == 0


def test_a_template_whose_email_passes_the_largest_message_stops_the_run_before_it_sends(billing, smtp, capsys,
                                                                                         monkeypatch, tmp_path):
    """Every email of the shipped templates passes a 5,000-byte limit, and no sample scenario tries them up front:
    the run stops at the first (exit 65, one line naming the email and the setting), sends nothing, and leaves
    every email queued for a rerun."""
    load_sample(billing, 45)
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates" / "emails", templates, ignore=shutil.ignore_patterns("scenarios"))
    monkeypatch.setenv("DUNNING_I18N__TEMPLATES_DIR", str(templates))
    monkeypatch.setenv("DUNNING_I18N__LOCALES_DIR", str(REPO / "locales"))
    monkeypatch.setenv("DUNNING_DELIVERY__MAX_MESSAGE_BYTES", "5000")
    code, summary = run(capsys)
    assert code == 65 and summary["sent"] == 0 and smtp.messages == []
    assert "(delivery.max_message_bytes)" in summary["stopped"] and "it stays queued" in summary["stopped"]
    with store.connect(billing, migrate=False).connect() as conn:
        statuses = set(conn.execute(select(store.emails.c.status)).scalars())
    assert statuses == {"queued"}
    monkeypatch.delenv("DUNNING_DELIVERY__MAX_MESSAGE_BYTES")
    code, summary = run(capsys)
    assert code == 0 and summary["sent"] == len(smtp.messages) > 0


def test_a_template_that_writes_too_much_is_stopped_as_it_renders(tmp_path):
    """A part that would be 100 MB stops at max_output characters: the rest is never rendered or held."""
    templates, locales = tmp_path / "templates", tmp_path / "locales"
    shutil.copytree(REPO / "templates" / "emails", templates)
    shutil.copytree(REPO / "locales", locales)
    scenario = next(s for s in load_scenarios(templates) if s.name.startswith("past_due"))
    text = templates / "past_due.txt"
    text.write_text(text.read_text().replace(
        "{% block content %}", '{% block content %}{% for i in range(100000) %}{{ "x" * 1000 }}{% endfor %}', 1))
    renderer = Renderer(templates, locales, cache_dir=False, max_output=1_000_000)
    renderer.prepare("past_due", "en")
    tracemalloc.start()
    try:
        with pytest.raises(EmailTooLarge, match=r"passes 1000000 characters \(delivery.max_message_bytes\)"):
            renderer.render("past_due", "en", scenario.context)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000, peak
