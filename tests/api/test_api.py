"""dunning.api: the documented names, type-checked usage, and each function doing its job."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from dunning import api, store
from dunning.billing import importer, sample
from dunning.delivery.capture import CaptureServer
from dunning.emails.scenarios import load_scenarios
from dunning.errors import LinkError
from tests.run.conftest import AS_OF

REPO = Path(__file__).resolve().parents[2]
PUBLIC = {"Settings", "PlannedNotice", "RunSummary", "RenderedEmail", "LinkClaims", "Clock", "load_settings",
          "plan", "run", "render_notice", "verify_link"}


def test_the_public_names_are_exported_and_typed() -> None:
    """dunning.api exports exactly the documented names, and the package ships py.typed."""
    assert set(api.__all__) == PUBLIC and all(getattr(api, name) is not None for name in PUBLIC)
    assert (REPO / "dunning" / "py.typed").is_file()


def _mypy(path: Path, tmp_path: Path) -> tuple[str, int]:
    """mypy's report on one file and its exit status, in a process of its own (mypy raises the
    interpreter's recursion limit for good)."""
    done = subprocess.run([sys.executable, "-m", "mypy", str(path), f"--cache-dir={tmp_path / 'cache'}"],
                          capture_output=True, text=True, cwd=REPO)
    return done.stdout + done.stderr, done.returncode


def test_a_usage_file_type_checks_against_the_api(monkeypatch, tmp_path: Path) -> None:
    """tests/api/usage.py passes mypy against the package; a call with a wrong type is caught."""
    monkeypatch.chdir(REPO)
    usage = REPO / "tests" / "api" / "usage.py"
    out, status = _mypy(usage, tmp_path)
    assert status == 0, out
    broken = tmp_path / "broken_usage.py"
    broken.write_text("from dunning import api\n\napi.plan(api.load_settings(), as_of='2026-11-20')\n")
    out, status = _mypy(broken, tmp_path)
    assert status == 1 and "as_of" in out


def test_plan_run_render_and_verify_through_the_api(sqlite_url: str, monkeypatch) -> None:
    """The API plans, sends the plan to a real SMTP server, renders a scenario and verifies the links it sent."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "api-test-signing-key")
    buffer = io.StringIO()
    sample.write_jsonl(buffer, sample.generate(20, AS_OF))
    settings = api.load_settings()
    importer.import_stream(store.connect(sqlite_url),
                           io.BytesIO(buffer.getvalue().encode()), batch_size=10)
    planned = [n for n in api.plan(settings, as_of=AS_OF) if n.status == "send"]
    assert planned
    with CaptureServer(port=0) as server:
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(server.port))
        summary = api.run(api.load_settings(), as_of=AS_OF)
        server.wait_for(summary.sent)
    assert summary.sent == len(planned) and len(server.messages) == len(planned)
    body = server.messages[0].parsed().get_body(("plain",))
    assert body is not None
    url = next(word for word in body.get_content().split() if "/settle/" in word)
    assert api.verify_link(url, settings).account in {n.account for n in planned}
    with pytest.raises(LinkError):
        api.verify_link(url[:-3] + "xyz", settings)
    scenario = next(s for s in load_scenarios(Path(settings.i18n.templates_dir)) if s.notice == "past_due")
    email = api.render_notice(settings, "past_due", "fr-FR", scenario.context)
    assert email.lang == "fr-FR" and email.subject and "<html" in email.html
