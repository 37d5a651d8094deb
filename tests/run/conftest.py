"""Fixtures for `dunning run`: sample billing state in a real database and a real SMTP server on loopback."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from dunning import store
from dunning.billing import importer, sample
from dunning.cli import main
from dunning.delivery.capture import CaptureServer
from dunning.delivery.mime import make_message_id
from dunning.run import job
from dunning.run.clock import Clock
from dunning.settings import load_settings

AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)
AS_OF_TEXT = "2026-11-20T12:00:00Z"


@pytest.fixture
def smtp(monkeypatch):
    """A capture SMTP server on loopback, and the settings pointing at it."""
    with CaptureServer(port=0) as server:
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(server.port))
        yield server


@pytest.fixture
def billing(database_url, monkeypatch):
    """The database URL, holding 45 sample accounts of every situation, with a signing key set."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", database_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "test-signing-key")
    load_sample(database_url, 45)
    return database_url


def load_sample(url: str, count: int, as_of: datetime = AS_OF, **options) -> None:
    """Import `count` generated accounts dated against as_of."""
    buffer = io.StringIO()
    sample.write_jsonl(buffer, sample.generate(count, as_of, **options))
    importer.import_stream(store.connect(url), io.BytesIO(buffer.getvalue().encode()), batch_size=20)


def planned(capsys, as_of: str = AS_OF_TEXT) -> list[dict]:
    """`dunning plan --format json` at as_of."""
    capsys.readouterr()
    assert main(["plan", "--as-of", as_of, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def expected_message_ids(plan: list[dict]) -> set[str]:
    """The Message-IDs the emails to send in this plan carry."""
    return {make_message_id(entry["keys"][0], "example.com") for entry in plan if entry["status"] == "send"}


def run(capsys, *args: str, clock: Clock | None = None) -> tuple[int, dict]:
    """`dunning run --json` at AS_OF (unless given): exit code and summary; with a clock, the job itself
    runs on that clock (so that leases and retry backoffs elapse without waiting)."""
    if clock is not None:
        summary = job.run(load_settings(), as_of=AS_OF, clock=clock)
        return summary.exit_code(), summary.as_dict()
    capsys.readouterr()
    code = main(["run", "--json", *(args or ("--as-of", AS_OF_TEXT))])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


def received_ids(server: CaptureServer) -> list[str]:
    """Message-IDs of every message the server received, duplicates included."""
    return [message.parsed()["Message-ID"] for message in server.messages]
