"""Relative paths in settings resolve against the settings file's folder, else the packaged defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from dunning import defaults
from dunning.settings import load_settings


@pytest.fixture(autouse=True)
def _no_folder_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUNNING_I18N__TEMPLATES_DIR")
    monkeypatch.delenv("DUNNING_I18N__LOCALES_DIR")


def test_relative_paths_resolve_against_the_settings_folder(tmp_path: Path):
    """The database file, outbox, CA file, templates and catalogs named relatively live beside settings.toml."""
    project = tmp_path / "acme"
    (project / "mail").mkdir(parents=True)
    (project / "catalogs").mkdir()
    (project / "settings.toml").write_text(
        '[database]\nurl = "sqlite:///data/dunning.sqlite3"\n[delivery]\noutbox_dir = "sent"\n'
        '[smtp]\nca_file = "ca.pem"\n[i18n]\ntemplates_dir = "mail"\nlocales_dir = "catalogs"\n')
    settings = load_settings(project / "settings.toml")
    assert settings.database.url == f"sqlite:///{project}/data/dunning.sqlite3"
    assert settings.delivery.outbox_dir == str(project / "sent")
    assert settings.smtp.ca_file == str(project / "ca.pem")
    assert (settings.i18n.templates_dir, settings.i18n.locales_dir) == (str(project / "mail"),
                                                                        str(project / "catalogs"))


def test_a_settings_file_named_relatively_resolves_from_its_own_folder(tmp_path: Path, monkeypatch):
    """DUNNING_SETTINGS=acme/settings.toml puts the database in acme/var/, wherever the command runs."""
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "settings.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DUNNING_SETTINGS", "acme/settings.toml")
    assert load_settings().database.url == f"sqlite:///{tmp_path}/acme/var/dunning.sqlite3"


def test_default_folders_fall_back_to_the_packaged_defaults(tmp_path: Path):
    """A project without templates/emails/ or locales/ of its own renders with the packaged ones."""
    (tmp_path / "settings.toml").write_text("")
    i18n = load_settings(tmp_path / "settings.toml").i18n
    assert Path(i18n.templates_dir) == defaults.templates_dir()
    assert Path(i18n.locales_dir) == defaults.locales_dir()
    assert (Path(i18n.templates_dir) / "past_due.mjml").is_file()
    assert (Path(i18n.locales_dir) / "de" / "LC_MESSAGES" / "messages.po").is_file()


def test_a_project_folder_wins_over_the_packaged_defaults(tmp_path: Path):
    """Once templates/emails/ exists beside settings.toml, it is the one used."""
    (tmp_path / "templates" / "emails").mkdir(parents=True)
    (tmp_path / "settings.toml").write_text("")
    assert load_settings(tmp_path / "settings.toml").i18n.templates_dir == str(tmp_path / "templates" / "emails")


def test_a_folder_named_in_settings_never_falls_back(tmp_path: Path):
    """A templates_dir the settings name explicitly is used as named, even when it is missing (no silent swap)."""
    (tmp_path / "settings.toml").write_text('[i18n]\ntemplates_dir = "my-templates"\n')
    assert load_settings(tmp_path / "settings.toml").i18n.templates_dir == str(tmp_path / "my-templates")


def test_absolute_and_server_urls_stay_as_they_are(tmp_path: Path, monkeypatch):
    """An absolute SQLite file and a PostgreSQL URL are not touched."""
    (tmp_path / "settings.toml").write_text("")
    monkeypatch.setenv("DUNNING_DATABASE__URL", "sqlite:////srv/dunning/db.sqlite3")
    assert load_settings(tmp_path / "settings.toml").database.url == "sqlite:////srv/dunning/db.sqlite3"
    monkeypatch.setenv("DUNNING_DATABASE__URL", "postgresql+psycopg://billing:pw@db.internal/dunning")
    assert load_settings(tmp_path / "settings.toml").database.url == "postgresql+psycopg://billing:pw@db.internal/dunning"


def test_a_relative_path_from_the_environment_resolves_against_the_current_folder(tmp_path: Path, monkeypatch):
    """DUNNING_DELIVERY__OUTBOX_DIR=out means ./out, as any path typed in a shell; the file's folder is not used."""
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "settings.toml").write_text("")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("DUNNING_DELIVERY__OUTBOX_DIR", "out")
    monkeypatch.setenv("DUNNING_DATABASE__URL", "sqlite:///db.sqlite3")
    settings = load_settings(tmp_path / "acme" / "settings.toml")
    assert settings.delivery.outbox_dir == str(tmp_path / "work" / "out")
    assert settings.database.url == f"sqlite:///{tmp_path}/work/db.sqlite3"
