"""Fixtures for the email templates: the shipped renderer and scenarios, small template trees, snapshots."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from dunning.emails.render import Renderer
from dunning.emails.scenarios import Scenario, load_scenarios

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates" / "emails"
LOCALES = REPO / "locales"
SHIPPED_LOCALES = ("ar", "de", "en", "fr", "nl", "sv")

PO_HEADER = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"
"Language: {locale}\\n"
"Plural-Forms: {plural}\\n"

"""


class TextSnapshot(SingleFileSnapshotExtension):
    """One readable .txt file per snapshot."""

    file_extension = "txt"
    _write_mode = WriteMode.TEXT


class HtmlSnapshot(SingleFileSnapshotExtension):
    """One readable .html file per snapshot."""

    file_extension = "html"
    _write_mode = WriteMode.TEXT


@pytest.fixture(autouse=True)
def _own_template_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test keeps compiled templates in its own cache directory, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def shipped_renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    """The shipped templates and catalogs, compiled once for the whole session."""
    return Renderer(TEMPLATES, LOCALES, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def _scenarios() -> dict[str, Scenario]:
    return {scenario.name: scenario for scenario in load_scenarios(TEMPLATES)}


@pytest.fixture
def scenario(_scenarios: dict[str, Scenario]):
    """A fresh copy of a shipped scenario's context, by name (tests may change it)."""
    return lambda name: copy.deepcopy(_scenarios[name].context)


def scenario_names() -> list[str]:
    """The shipped scenarios, for parametrize."""
    return sorted(path.stem for path in (TEMPLATES / "scenarios").glob("*.json"))


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write files (dedented) under root and return root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def write_po(locales_dir: Path, locale: str, body: str,
             plural: str = "nplurals=2; plural=(n != 1);") -> Path:
    """Write locales/<locale>/LC_MESSAGES/messages.po with a header and the given entries."""
    path = locales_dir / locale / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PO_HEADER.format(locale=locale, plural=plural) + textwrap.dedent(body), encoding="utf-8")
    return path


MINIMAL_LAYOUT = """\
    <mjml lang="{{ lang }}" dir="{{ dir }}">
      <mj-head><mj-title>{{ subject }}</mj-title><mj-preview>{{ preheader }}</mj-preview></mj-head>
      <mj-body>
        {% block content %}{% endblock %}
      </mj-body>
    </mjml>
    """


@pytest.fixture
def tree(tmp_path: Path):
    """A writer of small template + catalog trees: tree({"notice.mjml": ...}) → (templates_dir, locales_dir)."""

    def make(files: dict[str, str], catalogs: dict[str, str] | None = None) -> tuple[Path, Path]:
        templates = write_tree(tmp_path / "templates", {"_layout.mjml": MINIMAL_LAYOUT, **files})
        locales = tmp_path / "locales"
        for locale, body in {"en": "", **(catalogs or {})}.items():
            write_po(locales, locale, body)
        return templates, locales

    return make


def normalize_html(html: str) -> str:
    """The HTML with indentation and blank lines dropped (layout whitespace only, never content)."""
    lines = (line.strip() for line in html.splitlines())
    return "\n".join(line for line in lines if line) + "\n"


def visible_text(html: str) -> str:
    """The HTML's body text with tags dropped and whitespace collapsed (for `in` checks)."""
    body = html[html.index("<body"):]
    body = re.sub(r"<!--.*?-->", " ", body, flags=re.S)
    body = re.sub(r"</?(span|strong|a)\b[^>]*>", "", body)   # inline: no word break
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())
