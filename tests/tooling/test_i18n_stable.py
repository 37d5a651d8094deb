"""`dunning i18n extract` + `update` on untouched templates and catalogs change nothing, wherever they run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dunning.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the checkout's settings, templates and catalogs; the command runs from another folder."""
    monkeypatch.delenv("DUNNING_I18N__TEMPLATES_DIR")
    monkeypatch.delenv("DUNNING_I18N__LOCALES_DIR")
    project = tmp_path / "project"
    shutil.copytree(REPO / "templates", project / "templates")
    shutil.copytree(REPO / "locales", project / "locales", ignore=shutil.ignore_patterns("*.mo"))
    shutil.copy(REPO / "settings.toml", project / "settings.toml")
    monkeypatch.setenv("DUNNING_SETTINGS", str(project / "settings.toml"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return project


def _catalogs(locales: Path) -> dict[str, bytes]:
    return {path.relative_to(locales).as_posix(): path.read_bytes()
            for path in sorted(locales.rglob("messages.po*"))}


def test_extract_and_update_leave_the_checked_in_catalogs_byte_for_byte(project: Path):
    """No date churn, no moved line references, no re-wrapping: the checked-in .pot and .po files are a fixed point."""
    shipped = _catalogs(REPO / "locales")
    assert main(["i18n", "extract"]) == 0 and main(["i18n", "update"]) == 0
    assert _catalogs(project / "locales") == shipped
    assert len(shipped) == 7


def test_a_changed_template_moves_only_what_changed(project: Path):
    """A line added at the top of a template rewrites the references into it, and nothing else changes."""
    support = project / "templates" / "emails" / "_support.txt"
    support.write_text("\n" + support.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["i18n", "extract"]) == 0 and main(["i18n", "update"]) == 0
    pot = (project / "locales" / "messages.pot").read_text(encoding="utf-8")
    shipped = (REPO / "locales" / "messages.pot").read_text(encoding="utf-8")
    changed = set(pot.splitlines()) ^ set(shipped.splitlines())
    assert changed and all(line.startswith(("#:", '"POT-Creation-Date')) for line in changed)
    assert any("templates/emails/_support.txt:" in line for line in changed)
