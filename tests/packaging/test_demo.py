"""`dunning demo` ends with commands that really show what it did."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from dunning.cli import main
from dunning.errors import ExitCode


def _steps(out: str) -> list[list[str]]:
    after = out.split("Look at what it did:\n", 1)[1]
    return [shlex.split(line, comments=True) for line in after.splitlines() if line.strip()]


def test_the_demo_ends_with_commands_that_show_its_plan_preview_and_an_email(tmp_path: Path, capsys,
                                                                             monkeypatch: pytest.MonkeyPatch):
    """The printed plan command reads the demo's own database; the preview and .eml it names exist."""
    assert main(["demo", "--accounts", "21"]) == ExitCode.OK  # 21: every situation, the two that settle too
    out = capsys.readouterr().out
    plan, preview, email = _steps(out)
    assert preview[0] == "xdg-open" and (tmp_path / preview[1]).is_file()
    assert email[0] == "less"
    assert b"Subject:" in (tmp_path / email[1]).read_bytes()
    variable, value = plan[0].split("=", 1)
    monkeypatch.setenv(variable, value)
    assert plan[1:3] == ["dunning", "plan"]
    assert main(plan[2:]) == ExitCode.OK
    shown = capsys.readouterr().out
    assert "nothing is due" not in shown and "acct_" in shown
    report = json.loads(_demo_report(capsys))  # the demo's database, as the plan step set it
    assert report["overall"]["clicked"] > 0 and report["overall"]["settled"] > 0 and report["overall"]["recovered"]
    assert f"recovered): {Path('var') / 'report.html'}" in out and (tmp_path / "var" / "report.html").is_file()


def _demo_report(capsys) -> str:
    """`dunning report` over the demo's database, as JSON."""
    capsys.readouterr()
    assert main(["report"]) == ExitCode.OK
    return capsys.readouterr().out


def test_the_demo_warns_about_nothing_in_its_own_sample(tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture):
    """The demo's sample segment takes the defaults quietly: no warning on stderr or in the logs."""
    assert main(["demo", "--accounts", "12"]) == ExitCode.OK
    assert "warn" not in capsys.readouterr().err.lower()
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []
