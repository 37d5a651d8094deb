"""What a cron job leaves for its monitoring: a Prometheus textfile of the run's figures, and JSON log lines."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from dunning import store
from dunning.cli import main
from dunning.delivery.capture import Fault
from dunning.errors import ExitCode
from dunning.logs import JsonFormatter
from tests.run.conftest import AS_OF_TEXT, run


def metrics(path: Path) -> dict[str, float]:
    """Each sample of a metrics file by name (and outcome or state label, after a colon)."""
    return samples(path.read_text(encoding="utf-8"))


def samples(text: str) -> dict[str, float]:
    """Each sample of a text exposition by name, an outcome or state label added after a colon; checked by
    Prometheus' own promtool too when it is installed."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = sample.labels.get("outcome") or sample.labels.get("state")
            found[f"{sample.name}:{label}" if label else sample.name] = sample.value
    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    return found


def statuses(url: str) -> dict[str, int]:
    with store.connect(url).connect() as conn:
        emails = store.emails
        return dict(conn.execute(select(emails.c.status, func.count()).group_by(emails.c.status)).all())


def test_metrics_file_reports_the_run_and_the_queue_it_leaves(billing, smtp, capsys, tmp_path):
    """--metrics-file holds the run's counts, the retries it left waiting, a duration and a fresh success time,
    and no temporary file stays behind in its folder."""
    smtp.add_fault(Fault("data", code=451, times=3))
    folder = tmp_path / "textfile"
    folder.mkdir()
    before = time.time()
    code, summary = run(capsys, "--as-of", AS_OF_TEXT, "--metrics-file", str(folder / "dunning.prom"))
    figures = metrics(folder / "dunning.prom")
    assert code == ExitCode.PENDING and summary["retried"] == 3
    assert figures["dunning_emails_total:sent"] == summary["sent"] > 0
    assert figures["dunning_emails_total:retried"] == 3
    assert figures["dunning_emails_total:failed"] == figures["dunning_emails_total:unknown"] == 0
    assert figures["dunning_notices_deferred_total"] == summary["deferred"]
    assert figures["dunning_outbox_emails:retry"] == statuses(billing)["retry"] == 3
    assert figures["dunning_outbox_emails:unknown"] == figures["dunning_outbox_emails:queued"] == 0
    assert figures["dunning_last_run_success"] == 1
    assert before <= figures["dunning_last_success_timestamp_seconds"] <= time.time()
    assert 0 < figures["dunning_last_run_duration_seconds"] <= time.time() - before
    assert 'command="run"' in (folder / "dunning.prom").read_text()
    assert [p.name for p in folder.iterdir()] == ["dunning.prom"]


def test_a_stopped_run_keeps_the_last_success_time(billing, capsys, tmp_path, monkeypatch):
    """A run whose SMTP server is unreachable reports success 0 and carries the previous success time over."""
    path = tmp_path / "dunning.prom"
    code, _ = run(capsys, "--as-of", AS_OF_TEXT, "--dry-run", "--metrics-file", str(path))
    assert code == ExitCode.OK
    succeeded = metrics(path)["dunning_last_success_timestamp_seconds"]
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(unused.getsockname()[1]))
    monkeypatch.setenv("DUNNING_SMTP__RECONNECT_SECONDS", "0")
    code, summary = run(capsys, "--as-of", AS_OF_TEXT, "--metrics-file", str(path))
    figures = metrics(path)
    assert code == ExitCode.PENDING and summary["stopped"] and summary["sent"] == 0
    assert figures["dunning_last_run_success"] == 0 and figures["dunning_emails_total:sent"] == 0
    assert figures["dunning_outbox_emails:queued"] == summary["planned"] > 0
    assert figures["dunning_last_success_timestamp_seconds"] == succeeded


def test_a_metrics_file_in_a_missing_folder_is_refused_before_anything_is_enqueued(billing, smtp, capsys, tmp_path):
    """--metrics-file in a folder that does not exist exits 73 naming it, having enqueued and sent nothing."""
    missing = tmp_path / "no-such-folder" / "dunning.prom"
    assert main(["run", "--as-of", AS_OF_TEXT, "--metrics-file", str(missing)]) == ExitCode.CANT_CREATE
    assert "no-such-folder" in capsys.readouterr().err
    assert statuses(billing) == {} and smtp.messages == []


def _dunning(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dunning", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_json_logs_are_one_object_per_line_with_ids_and_no_personal_data(billing, smtp, monkeypatch):
    """`--log-format json run` writes only JSON objects on stderr, progress as counts, and never an account's
    name or email address."""
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")  # progress is reported by the main process
    done = _dunning("--log-format", "json", "run", "--as-of", AS_OF_TEXT)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    sent = [line for line in lines if line.get("event") == "sent"]
    assert sent and sent[-1]["total"] == len(smtp.messages) > 0
    with store.connect(billing).connect() as conn:
        people = conn.execute(select(store.accounts.c.name, store.accounts.c.email)).all()
    assert people and not [value for person in people for value in person if value in done.stderr]


def test_json_logs_report_an_error_as_a_json_line_with_its_exit_code(billing, monkeypatch):
    """A refused command under --log-format json says why in one JSON line carrying the exit code."""
    monkeypatch.delenv("DUNNING_LINKS__KEYS")
    done = _dunning("--log-format", "json", "run", "--as-of", AS_OF_TEXT)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert done.returncode == ExitCode.CONFIG
    assert [(line["level"], line["exit_code"], line["command"]) for line in lines] == [("error", 78, "run")]


def test_json_formatter_masks_addresses_in_messages_and_tracebacks():
    """An address that slips into a message or an exception is masked; the ids passed with it are kept."""
    try:
        raise ValueError("To: invalid address 'jane.doe@customer.example'")
    except ValueError:
        record = logging.LogRecord("dunning.run", logging.WARNING, __file__, 1, "email %s to %s: bounced",
                                   (42, "<Jane> jane.doe@customer.example"), sys.exc_info())
    record.email_id, record.account = 42, "acct_7"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "jane.doe" not in line and "customer.example" not in line
    assert entry["message"] == "email 42 to <Jane> <address>: bounced"
    assert "ValueError: To: invalid address '<address>'" in entry["exception"]
    assert (entry["email_id"], entry["account"], entry["level"]) == (42, "acct_7", "warning")


def test_json_logs_give_one_event_per_email_not_sent(billing, smtp, monkeypatch):
    """Each email retried or failed is one JSON event with its ids and the server's code, and no address;
    the global options are taken after the subcommand too."""
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")
    smtp.add_fault(Fault("data", code=451, times=2))
    smtp.add_fault(Fault("data", code=554, times=1))
    done = _dunning("run", "--as-of", AS_OF_TEXT, "--log-format", "json")
    assert done.returncode == ExitCode.FAILED, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    events = [line for line in lines if str(line.get("event", "")).startswith("email_")]
    assert sorted((line["event"], line["code"]) for line in events) == [
        ("email_failed", 554), ("email_retry", 451), ("email_retry", 451)]
    assert all(isinstance(line["email_id"], int) and line["account"] and line["notice"] for line in events)
    assert "@" not in done.stderr


def test_json_logs_give_one_event_per_refused_recipient(billing, smtp, monkeypatch):
    """A recipient refused for good is one JSON event naming the email and the recipient's place, not its
    address."""
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")
    smtp.add_fault(Fault("rcpt", code=550, times=1))  # the first email's first recipient: its To
    done = _dunning("--log-format", "json", "run", "--as-of", AS_OF_TEXT)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    [refused] = [line for line in lines if line.get("event") == "recipient_refused"]
    assert (refused["recipient"], refused["code"]) == (1, 550) and isinstance(refused["email_id"], int)
    assert "@" not in done.stderr


def test_import_rejections_are_json_events_under_json_logs(billing, tmp_path):
    """`import --log-format json` reports a rejected line as a JSON event naming line and reason."""
    export = tmp_path / "billing.jsonl"
    export.write_text('{"not json\n', encoding="utf-8")
    done = _dunning("import", str(export), "--log-format", "json")
    assert done.returncode == ExitCode.DATA
    [line] = [json.loads(line) for line in done.stderr.splitlines()]
    assert (line["event"], line["line"]) == ("import_rejected", 1) and "not valid JSON" in line["reason"]


def test_the_textfile_counters_add_up_over_runs(billing, smtp, capsys, tmp_path):
    """A second run adds its counts to the first's: the textfile's counters only grow, as Prometheus expects."""
    path = tmp_path / "dunning.prom"
    smtp.add_fault(Fault("rcpt", code=451, times=1))
    _code, first = run(capsys, "--as-of", AS_OF_TEXT, "--metrics-file", str(path))
    assert metrics(path)["dunning_emails_total:retried"] == first["retried"] == 1
    _code, second = run(capsys, "--as-of", AS_OF_TEXT, "--metrics-file", str(path))
    figures = metrics(path)
    assert figures["dunning_emails_total:sent"] == first["sent"] + second["sent"] > 0
    assert figures["dunning_emails_total:retried"] == 1


class Pushgateway(ThreadingHTTPServer):
    """A loopback HTTP server that records each request (method, path, body) and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                gateway.requests.append(("PUT", self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                """Quiet."""

        super().__init__(("127.0.0.1", 0), Handler)


def test_pushgateway_receives_the_figures_of_a_run(billing, smtp, capsys):
    """--pushgateway URL pushes the run's figures once, grouped by job and command, in the text format."""
    gateway = Pushgateway()
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    try:
        code, summary = run(capsys, "--as-of", AS_OF_TEXT, "--pushgateway", f"http://127.0.0.1:{gateway.server_port}")
    finally:
        gateway.shutdown()
        gateway.server_close()
    [(method, path, body)] = gateway.requests
    assert code == ExitCode.OK and (method, path) == ("PUT", "/metrics/job/dunning/command/run")
    figures = samples(body)
    assert figures["dunning_emails_total:sent"] == summary["sent"] > 0 and figures["dunning_last_run_success"] == 1


def test_a_deliverer_service_serves_its_figures_on_metrics(billing, smtp, capsys):
    """`deliver --forever --metrics-port` answers /metrics on loopback with its counts and the outbox by state."""
    assert main(["run", "--json", "--no-deliver", "--as-of", AS_OF_TEXT]) == 0
    planned = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["planned"]
    with socket.socket() as probe:  # a free port, given back for the deliverer to take
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service = subprocess.Popen([sys.executable, "-m", "dunning", "deliver", "--forever", "--json",
                                "--metrics-port", str(port)], env=dict(os.environ), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        smtp.wait_for(planned, timeout=60)  # the endpoint is up before the first email goes out
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=60)
    assert service.returncode == 0, err
    figures = samples(text)
    assert "dunning_outbox_emails:queued" in figures and "dunning_emails_total:sent" in figures
    assert 'command="deliver"' in text and json.loads(out.strip().splitlines()[-1])["sent"] == planned


def test_under_json_logs_a_command_writes_nothing_but_json_on_stderr(tmp_path, monkeypatch):
    """`plan` on an empty store and `sample --out` say what they say as JSON events under --log-format json."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    planned = _dunning("plan", "--log-format", "json")
    sampled = _dunning("sample", "--accounts", "2", "--out", str(tmp_path / "s.jsonl"), "--log-format", "json")
    events = [json.loads(line)["event"] for done in (planned, sampled) for line in done.stderr.splitlines()]
    assert (planned.returncode, sampled.returncode) == (0, 0) and events == ["store_empty", "sample_written"]


def test_a_refused_run_still_writes_its_metrics_and_keeps_its_exit_code(tmp_path, monkeypatch, capsys):
    """A run refused before its store exists (no signing key) exits 78 and leaves a metrics file saying so."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", f"sqlite:///{tmp_path / 'never.sqlite3'}")
    monkeypatch.delenv("DUNNING_LINKS__KEYS", raising=False)
    path = tmp_path / "dunning.prom"
    assert main(["run", "--metrics-file", str(path)]) == ExitCode.CONFIG
    figures = metrics(path)
    assert figures["dunning_last_run_success"] == 0 and "dunning_outbox_emails:queued" not in figures
