"""`dunning init DIR`: a project of one's own, made from the packaged defaults, never over existing files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dunning import defaults
from dunning.cli import main
from dunning.commands.lint import lint_tree
from dunning.errors import ExitCode
from dunning.settings import load_settings


@pytest.fixture(autouse=True)
def _no_folder_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUNNING_I18N__TEMPLATES_DIR")
    monkeypatch.delenv("DUNNING_I18N__LOCALES_DIR")
    monkeypatch.delenv("DUNNING_SETTINGS")


def _files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def test_init_writes_a_project_with_copies_of_every_template_and_catalog(tmp_path: Path, capsys):
    """init writes settings.toml, README, .gitignore, var/ and every default template, scenario and catalog."""
    project = tmp_path / "acme"
    assert main(["init", str(project)]) == ExitCode.OK
    written = _files(project)
    assert {"settings.toml", "README.md", ".gitignore", "var/.gitkeep"} <= written
    templates = {f"templates/emails/{name}" for name in _files(defaults.templates_dir()) if "__" not in name}
    locales = {f"locales/{name}" for name in _files(defaults.locales_dir())
               if name.endswith((".po", ".pot"))}
    assert templates and locales and (templates | locales) <= written
    assert not [name for name in written if name.endswith((".py", ".pyc", ".mo"))]
    assert "cd " in capsys.readouterr().out


def test_the_project_settings_are_commented_and_resolve_inside_the_project(tmp_path: Path, monkeypatch):
    """The settings file keeps its comments and, read from elsewhere, points at the project's own folders."""
    project = tmp_path / "acme"
    create = main(["init", str(project)])
    assert create == ExitCode.OK
    text = (project / "settings.toml").read_text(encoding="utf-8")
    assert text.count("\n#") > 10 and tomllib.loads(text)["i18n"]["templates_dir"] == "templates/emails"
    monkeypatch.chdir(tmp_path)
    settings = load_settings(project / "settings.toml")
    assert settings.i18n.templates_dir == str(project / "templates" / "emails")
    assert settings.i18n.locales_dir == str(project / "locales")
    assert settings.database.url == f"sqlite:///{project}/var/dunning.sqlite3"


def test_the_copied_templates_and_catalogs_lint_clean(tmp_path: Path):
    """What init copies is a working set: the linter finds no error in it."""
    project = tmp_path / "acme"
    main(["init", str(project)])
    problems = lint_tree(project / "templates" / "emails", project / "locales")
    assert [p for p in problems if p.severity == "error"] == []


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, capsys):
    """An edited settings.toml survives a second init: it exits 73, names the file, and writes nothing."""
    project = tmp_path / "acme"
    (project / "templates" / "emails").mkdir(parents=True)
    (project / "settings.toml").write_text("# ours\n")
    assert main(["init", str(project)]) == ExitCode.CANT_CREATE
    assert "settings.toml" in capsys.readouterr().err
    assert (project / "settings.toml").read_text() == "# ours\n"
    assert _files(project) == {"settings.toml"}


def test_init_force_overwrites(tmp_path: Path):
    """--force replaces the files init owns and leaves the others alone."""
    project = tmp_path / "acme"
    project.mkdir()
    (project / "settings.toml").write_text("# ours\n")
    (project / "notes.txt").write_text("keep")
    assert main(["init", str(project), "--force"]) == ExitCode.OK
    assert (project / "settings.toml").read_text() == defaults.settings_template().read_text()
    assert (project / "notes.txt").read_text() == "keep"


def test_init_into_an_empty_existing_folder(tmp_path: Path):
    """An existing but empty folder is fine: nothing would be overwritten."""
    project = tmp_path / "empty"
    project.mkdir()
    assert main(["init", str(project)]) == ExitCode.OK
