"""The defaults shipped inside the package: email templates, catalogs, scenarios and the settings template.

In a checkout they are the repository's own `templates/` and `locales/` (the build maps them here), so
translators and designers keep editing them where they are.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["templates_dir", "locales_dir", "settings_template", "project_files"]


def _folder(package: str, *parts: str) -> Path:
    # Installed from a wheel or editable, the resources are plain files on disk: a Path is safe.
    return Path(str(files(package).joinpath(*parts)))


def templates_dir() -> Path:
    """The packaged email templates (with their scenarios)."""
    return _folder("dunning.defaults.templates", "emails")


def locales_dir() -> Path:
    """The packaged gettext catalogs, one folder per locale."""
    return _folder("dunning.defaults.locales")


def settings_template() -> Path:
    """The packaged, commented settings file: every key with its default."""
    return _folder("dunning.defaults", "settings.toml")


def project_files() -> Path:
    """The README and .gitignore `dunning init` writes into a new project."""
    return _folder("dunning.defaults", "project")
