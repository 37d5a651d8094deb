"""Fixtures for the marketer tooling: small template and catalog trees, and copies of the shipped ones."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED_TEMPLATES = REPO / "templates" / "emails"
SHIPPED_LOCALES = REPO / "locales"

PO_HEADER = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"
"Language: {locale}\\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\\n"

"""


def write_po(locales_dir: Path, locale: str, body: str) -> Path:
    """Write locales/<locale>/LC_MESSAGES/messages.po with a header and the given entries."""
    path = locales_dir / locale / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PO_HEADER.format(locale=locale) + textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory, with settings pointing at ./templates/emails and ./locales (relative)."""
    monkeypatch.setenv("DUNNING_I18N__TEMPLATES_DIR", "templates/emails")
    monkeypatch.setenv("DUNNING_I18N__LOCALES_DIR", "locales")
    (tmp_path / "templates" / "emails").mkdir(parents=True)
    (tmp_path / "locales").mkdir()
    return tmp_path


@pytest.fixture
def shipped_copy(workdir: Path) -> Path:
    """Copies of the shipped templates and catalogs in the current directory, ready to be broken."""
    shutil.rmtree(workdir / "templates" / "emails")
    shutil.rmtree(workdir / "locales")
    shutil.copytree(SHIPPED_TEMPLATES, workdir / "templates" / "emails")
    shutil.copytree(SHIPPED_LOCALES, workdir / "locales")
    return workdir
