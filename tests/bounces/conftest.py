"""Fixtures for bounces: accounts owing money, a real SMTP server on loopback, and DSNs to their VERP addresses."""

from __future__ import annotations

import io
import json
import mailbox
from pathlib import Path

import pytest

from dunning import store
from dunning.billing import importer
from dunning.cli import main
from dunning.delivery.capture import CaptureServer

AS_OF = "2026-11-20T12:00:00Z"      # past_due stage 2 goes out (stage 1 skipped, the failed card superseded)
NEXT_STAGE = "2026-11-24T12:00:00Z"  # past_due stage 3 is due
RETURN_PATH = "bounces@billing.example.com"
KEY = "test-signing-key"
CORPUS = Path(__file__).parent / "corpus" / "mta"
TEMPLATE_VERP = "bounces+1234.abcdefgh@billing.example.com"


def account(account_id: str, email: str, cc: tuple[str, ...] = (), total: str = "120.00") -> dict:
    """An account of Europe/Paris whose invoice was due 2026-11-10 and whose card failed on 2026-11-20."""
    return {"id": account_id, "name": f"{account_id} SARL", "email": email, "cc": list(cc), "locale": "fr-FR",
            "timezone": "Europe/Paris",
            "payment_methods": [{"id": f"pm_{account_id}", "type": "card", "brand": "visa", "last4": "4242"}],
            "subscriptions": [{"id": f"sub_{account_id}", "name": "Cloud", "payment_method": f"pm_{account_id}",
                               "status": "past_due"}],
            "invoices": [{"id": f"inv_{account_id}", "subscription": f"sub_{account_id}", "currency": "EUR",
                          "total": total, "issued_date": "2026-10-27", "due_date": "2026-11-10", "status": "open"}],
            "charges": [{"id": f"ch_{account_id}", "invoice": f"inv_{account_id}", "payment_method": f"pm_{account_id}",
                         "attempted_at": "2026-11-20T06:00:00Z", "outcome": "failed",
                         "failure_code": "card_declined"}]}


def import_accounts(url: str, *accounts: dict) -> None:
    """Import these accounts (JSON Lines through the real importer)."""
    data = "".join(json.dumps(a) + "\n" for a in accounts).encode()
    summary = importer.import_stream(store.connect(url), io.BytesIO(data), batch_size=10)
    assert summary.rejected == 0


@pytest.fixture
def smtp(monkeypatch):
    """A capture SMTP server on loopback, and the settings pointing at it."""
    with CaptureServer(port=0) as server:
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(server.port))
        yield server


@pytest.fixture
def bounce_settings(database_url, monkeypatch, tmp_path):
    """The database URL, with VERP on, a signing key, and an unparsed folder in the test's directory."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", database_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", KEY)
    monkeypatch.setenv("DUNNING_BOUNCES__RETURN_PATH", RETURN_PATH)
    monkeypatch.setenv("DUNNING_BOUNCES__UNPARSED", str(tmp_path / "unparsed"))
    return database_url


def dsn(name: str, *, verp: str, recipient: str, message_id: str | None = None, date: str | None = None) -> bytes:
    """A corpus DSN rewritten for one email: its VERP address and failed recipient (and a Message-ID, a Date)."""
    data = (CORPUS / name).read_bytes()
    data = data.replace(TEMPLATE_VERP.encode(), verp.encode())
    data = data.replace(b"jane.doe@contoso.example", recipient.encode())
    if message_id:
        data = _replace_header(data, b"Message-ID", message_id.encode())
    if date:
        data = _replace_header(data, b"Date", date.encode())
    return data


def _replace_header(data: bytes, name: bytes, value: bytes) -> bytes:
    head, sep, body = data.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.lower().startswith(name.lower() + b":")]
    return b"\n".join([*lines, name + b": " + value]) + sep + body


def maildir_with(path: Path, *messages: bytes) -> Path:
    """A Maildir at path holding these messages in new/, as an MTA delivers them."""
    box = mailbox.Maildir(path, create=True)
    for data in messages:
        box.add(data)
    return path


def cli(capsys, *args: str) -> tuple[int, str]:
    """Run `dunning ARGS`: exit code and standard output."""
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().out


def plan(capsys, as_of: str) -> list[dict]:
    """`dunning plan --format json` at as_of."""
    code, out = cli(capsys, "plan", "--as-of", as_of, "--format", "json")
    assert code == 0
    return json.loads(out)
