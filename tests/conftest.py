"""Fixtures shared by every test: isolation, and the two real databases."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("DUNNING_TEST_POSTGRES_URL")
CHROMIUM = os.environ.get("DUNNING_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def _template_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _template_cache_home: Path) -> None:
    """Every test runs in its own directory with no DUNNING_* settings leaking in from the shell."""
    for name in list(os.environ):
        if name.startswith("DUNNING_") and name != "DUNNING_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    # A copy of the repository's settings in the test's folder: its relative paths (the SQLite file, the
    # outbox) resolve there, never into the checkout.
    shutil.copyfile(REPO / "settings.toml", tmp_path / "settings.toml")
    monkeypatch.setenv("DUNNING_SETTINGS", str(tmp_path / "settings.toml"))
    monkeypatch.setenv("DUNNING_I18N__TEMPLATES_DIR", str(REPO / "templates" / "emails"))
    monkeypatch.setenv("DUNNING_I18N__LOCALES_DIR", str(REPO / "locales"))
    # The compiled-template cache lives under XDG_CACHE_HOME: the suite shares one of its own, never the
    # user's (entries are keyed by content, so sharing between tests is safe).
    monkeypatch.setenv("XDG_CACHE_HOME", str(_template_cache_home))
    monkeypatch.chdir(tmp_path)


def _postgres_schema_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set DUNNING_TEST_POSTGRES_URL")
        pytest.skip("PostgreSQL tests need DUNNING_TEST_POSTGRES_URL (see .ci/postgres.sh)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty database: a SQLite file, and a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dunning.sqlite3'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file (for tests that are about SQLite itself)."""
    return f"sqlite:///{tmp_path / 'dunning.sqlite3'}"


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL schema (for tests that are about PostgreSQL itself)."""
    yield from _postgres_schema_url()


# Per module: Playwright's sync API runs an event loop in the main thread while it lives, which a later
# test's asyncio.run would meet.
@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (no browser download); a missing one fails under CI."""
    if not Path(CHROMIUM).exists():
        reason = f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()
