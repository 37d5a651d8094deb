"""Conditions that are not bugs end with one line and their sysexits code, never a traceback (exit 70)."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dunning import store
from dunning.billing import sample
from dunning.cli import main
from tests.conftest import POSTGRES_URL
from tests.run.conftest import AS_OF, AS_OF_TEXT, billing, load_sample, smtp
from tests.studio.conftest import capture, settings, studio, tree
from tests.studio.test_guards import request

__all__ = ["billing", "smtp", "capture", "settings", "studio", "tree"]  # fixtures used by name


def _dunning(*args: str | bytes, env: dict[str, str] | None = None, limit_file_bytes: int | None = None,
             **options: object) -> subprocess.Popen[bytes]:
    def limited() -> None:
        if limit_file_bytes is not None:  # a disk that fills: writes past this size fail (EFBIG)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))
    return subprocess.Popen([sys.executable, "-m", "dunning", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, preexec_fn=limited,
                            **options)  # type: ignore[call-overload]


def _one_line(process: subprocess.Popen[bytes], code: int, says: str) -> str:
    """The process's exit code is `code` and its stderr ends with one line saying `says`, no traceback."""
    _out, err = process.communicate(timeout=120)
    lines = err.decode(errors="replace")
    assert process.returncode == code and says in lines.splitlines()[-1] and "Traceback" not in lines, lines
    return lines


def test_a_settings_path_that_is_a_directory_is_a_settings_error(tmp_path, capsys):
    (tmp_path / "conf").mkdir()
    assert main(["--settings", str(tmp_path / "conf"), "plan"]) == 78
    said = capsys.readouterr().err.strip()
    assert said == f"dunning plan: error: {tmp_path / 'conf'}: is a directory, not a settings file"


def test_a_sqlite_file_that_is_not_a_database_is_named(tmp_path, capsys, monkeypatch):
    (tmp_path / "db.sqlite3").write_bytes(b"these bytes are not a SQLite database " * 40)
    monkeypatch.setenv("DUNNING_DATABASE__URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert main(["plan"]) == 78
    err = capsys.readouterr().err
    assert "database.url: the file is not a usable SQLite database" in err and "Traceback" not in err


def test_suppressions_add_refuses_bytes_that_are_not_utf8(sqlite_url):
    process = _dunning(b"suppressions", b"add", b"ok@example.com", b"\xff\xfe@example.com",
                       env={"DUNNING_DATABASE__URL": sqlite_url})
    _one_line(process, 65, "not an email address: '\\udcff\\udcfe@example.com'; nothing changed")


def test_the_studio_answers_a_nul_in_a_path_and_json_nested_too_deep_with_400(studio):
    status, _body = request(studio, "GET", "/source/templates/a%00.mjml")
    assert status == 400
    nested = b"[" * 100_000 + b"]" * 100_000
    status, body = request(studio, "POST", "/api/send", body=nested, headers={"Content-Type": "application/json"})
    assert status == 400 and not json.loads(body)["ok"]


def _sample_file(path: Path, count: int) -> Path:
    buffer = io.StringIO()
    sample.write_jsonl(buffer, sample.generate(count, AS_OF))
    path.write_text(buffer.getvalue())
    return path


def _holding_sample(url: str, monkeypatch: pytest.MonkeyPatch, count: int) -> str:
    monkeypatch.setenv("DUNNING_DATABASE__URL", url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "test-signing-key")
    load_sample(url, count)
    return url


def _file_size(url: str) -> int:
    return Path(url.removeprefix("sqlite:///")).stat().st_size


def test_a_disk_that_fills_during_an_import_exits_74(tmp_path, sqlite_url):
    lines = _sample_file(tmp_path / "state.jsonl", 1000)
    store.connect(sqlite_url).dispose()
    _one_line(_dunning("import", str(lines), env={"DUNNING_DATABASE__URL": sqlite_url},
                       limit_file_bytes=_file_size(sqlite_url) + 100_000), 74, "error: ")


def test_a_disk_that_fills_during_a_run_exits_74(sqlite_url, smtp, monkeypatch):
    _holding_sample(sqlite_url, monkeypatch, 150)
    _one_line(_dunning("run", "--as-of", AS_OF_TEXT, limit_file_bytes=_file_size(sqlite_url) + 50_000), 74,
              "error: ")


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_delivery_process_killed_mid_run_exits_75_with_its_work_left_queued(billing, smtp, monkeypatch):
    load_sample(billing, 150)
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "2")
    monkeypatch.setenv("DUNNING_DELIVERY__BATCH_SIZE", "5")
    run: list[subprocess.Popen[bytes]] = []

    def kill_the_helper(_message: object) -> None:
        if run and len(smtp.messages) == 1:
            for child in _children(run[0].pid):
                os.kill(child, signal.SIGKILL)

    smtp.on_message = kill_the_helper
    run.append(_dunning("run", "--as-of", AS_OF_TEXT))
    _one_line(run[0], 75, "stopped without reporting (exit code -9)")


@pytest.mark.postgres
def test_postgresql_backends_terminated_mid_run_exit_69(postgres_url, smtp, monkeypatch):
    _holding_sample(postgres_url, monkeypatch, 60)
    name = f"dunning-test-{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL or "")

    def terminate(_message: object) -> None:
        if len(smtp.messages) == 3:
            with admin.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE application_name = :name"), {"name": name})

    smtp.on_message = terminate
    try:
        _one_line(_dunning("run", "--as-of", AS_OF_TEXT, env={"PGAPPNAME": name}), 69,
                  "the database connection was lost")
    finally:
        admin.dispose()
