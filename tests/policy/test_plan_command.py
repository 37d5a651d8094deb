"""`dunning plan` end to end on SQLite and PostgreSQL, and the SQL candidate selection behind it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dunning import store
from dunning.billing import loader, sample
from dunning.cli import main
from dunning.planning import candidates
from dunning.planning.policy import plan
from dunning.settings import load_settings

from .builders import LOCALES, account, cancelled, charge, invoice, scoped, sub, write_jsonl

AS_OF = "2026-11-20T09:00:00Z"


def _state() -> list[dict]:
    """A handful of accounts: due in several ways, deferred, and with nothing due at all."""
    return [scoped(line, line["id"].removeprefix("acct")) for line in (
        account("acct_c", invoices=[invoice(due="2026-11-08")], charges=[charge(at="2026-11-19T06:00:00Z")],
                cc=["finance@acct-c.example"]),
        account("acct_a", locale="ja-JP", tz="Asia/Tokyo", invoices=[invoice(currency="JPY", total="1500",
                                                                            due="2026-11-12")]),
        account("acct_paid", invoices=[invoice(status="paid", paid="100.00")]),
        account("acct_later", invoices=[invoice(due="2026-12-01")]),
        account("acct_night", tz="Pacific/Auckland", locale="en-NZ"),
        account("acct_gone", subs=[cancelled(at="2026-11-18T10:00:00Z"), sub("sub_2")],
                invoices=[invoice("inv_1", "sub_1", total="20.00")]),
        account("acct_deleted", subs=[cancelled(at="2026-08-25T10:00:00Z", data_deleted=True)], invoices=[]),
        account("acct_kiritimati", tz="Pacific/Kiritimati", invoices=[invoice(due="2026-11-19")]),
        account("acct_pago", tz="Pacific/Pago_Pago", invoices=[invoice(due="2026-11-19")],
                subs=[cancelled(at="2026-09-20T23:30:00Z")]),
    )]


EXPECTED = [  # (account, notice, stage, status, keys)
    ("acct_a", "past_due", 1, "skipped", ["past_due:acct_a:pm_1_a:2026-11-12:1"]),
    ("acct_a", "past_due", 2, "send", ["past_due:acct_a:pm_1_a:2026-11-12:2"]),
    ("acct_c", "card_charge_failed", None, "superseded", ["card_charge_failed:acct_c:pm_1_c:ch_1_c"]),
    ("acct_c", "past_due", 1, "skipped", ["past_due:acct_c:pm_1_c:2026-11-08:1"]),
    ("acct_c", "past_due", 2, "send", ["past_due:acct_c:pm_1_c:2026-11-08:2"]),
    ("acct_gone", "service_cancelled", None, "send", ["service_cancelled:sub_1_gone"]),
    ("acct_kiritimati", "past_due", 1, "deferred", ["past_due:acct_kiritimati:pm_1_kiritimati:2026-11-19:1"]),
    ("acct_night", "past_due", 1, "deferred", ["past_due:acct_night:pm_1_night:2026-11-01:1"]),
    ("acct_night", "past_due", 2, "deferred", ["past_due:acct_night:pm_1_night:2026-11-01:2"]),
    ("acct_night", "past_due", 3, "deferred", ["past_due:acct_night:pm_1_night:2026-11-01:3"]),
    ("acct_pago", "pending_deletion", 1, "deferred", ["pending_deletion:sub_1_pago:1"]),
]


@pytest.fixture
def imported(database_url, tmp_path, monkeypatch):
    """The state above imported through `dunning import` into a fresh database, three accounts per batch."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", database_url)
    monkeypatch.setenv("DUNNING_DATABASE__BATCH_SIZE", "3")
    for locale in ("en", "fr"):  # the catalogs plan looks for: locales/<locale>/LC_MESSAGES/messages.po
        catalog = tmp_path / "locales" / locale / "LC_MESSAGES" / "messages.po"
        catalog.parent.mkdir(parents=True)
        catalog.write_text('msgid ""\nmsgstr ""\n', encoding="utf-8")
    monkeypatch.setenv("DUNNING_I18N__LOCALES_DIR", str(tmp_path / "locales"))
    path = write_jsonl(tmp_path / "loader.jsonl", _state())
    assert main(["import", str(path)]) == 0
    return database_url


def _entries(objects: list[dict]) -> list[tuple]:
    return [(o["account"], o["notice"], o["stage"], o["status"], o["keys"]) for o in objects]


def test_plan_json_end_to_end(imported, capsys):
    """Imported state planned through the CLI gives the contract's JSON, in account order, across batches."""
    capsys.readouterr()
    assert main(["plan", "--as-of", AS_OF, "--format", "json"]) == 0
    objects = json.loads(capsys.readouterr().out)
    assert _entries(objects) == EXPECTED
    assert objects[4] == {
        "account": "acct_c", "notice": "past_due", "stage": 2, "payment_method": "pm_1_c", "status": "send",
        "amounts": {"EUR": "100.00"}, "invoices": ["inv_1_c"], "subscriptions": ["sub_1_c"], "locale": "fr-FR",
        "to": ["billing@acct-c.example"], "keys": ["past_due:acct_c:pm_1_c:2026-11-08:2"],
        "cc": ["finance@acct-c.example"], "catalog": "fr", "requested_locale": "fr-FR", "locale_fallback": False}
    assert objects[1]["amounts"] == {"JPY": "1500"} and objects[1]["locale"] == "en"


def test_plan_skips_keys_the_ledger_holds_and_records_nothing(imported, capsys):
    """A key in the ledger is not planned again, and planning itself writes nothing to the ledger."""
    engine = store.connect(imported)
    with engine.begin() as conn:
        conn.execute(store.notices.insert().values(
            key="past_due:acct_c:pm_1_c:2026-11-08:2", account_id="acct_c", notice="past_due", outcome="email",
            created_at=datetime(2026, 11, 20, tzinfo=UTC)))
    capsys.readouterr()
    assert main(["plan", "--as-of", AS_OF, "--format", "json"]) == 0
    objects = json.loads(capsys.readouterr().out)
    assert ("acct_c", "card_charge_failed", None, "send", ["card_charge_failed:acct_c:pm_1_c:ch_1_c"]) in (
        _entries(objects))
    assert all("past_due:acct_c:pm_1_c:2026-11-08:2" not in o["keys"] for o in objects)
    with engine.connect() as conn:
        assert conn.execute(select(store.notices.c.key)).scalars().all() == ["past_due:acct_c:pm_1_c:2026-11-08:2"]
    engine.dispose()


def test_plan_table_is_the_default(imported, capsys):
    """Without --format, people get a table with the reason for each entry and a summary line."""
    capsys.readouterr()
    assert main(["plan", "--as-of", AS_OF]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["account", "notice", "stage", "amounts", "status", "why"]
    assert any(line.startswith("acct_a") and "JPY 1500" in line and "send" in line for line in out)
    assert out[-1] == "3 send, 5 deferred, 2 skipped, 1 superseded"


def test_as_of_needs_an_offset(capsys):
    """--as-of without a time zone offset is refused, never guessed."""
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--as-of", "2026-11-20T09:00:00"])
    assert exited.value.code == 2 and "offset" in capsys.readouterr().err


def test_candidates_never_load_accounts_with_nothing_due(imported, monkeypatch):
    """Only accounts that may be due are read from the store; paid, future and deleted ones never are."""
    loaded: list[str] = []
    real = loader.load_accounts

    def counting(conn, ids):
        loaded.extend(ids)
        return real(conn, ids)

    monkeypatch.setattr(candidates.loader, "load_accounts", counting)
    settings = load_settings()
    engine = store.connect(imported)
    batches = list(candidates.iter_plan(engine, datetime.fromisoformat(AS_OF), settings, LOCALES))
    engine.dispose()
    assert loaded == ["acct_a", "acct_c", "acct_gone", "acct_kiritimati", "acct_night", "acct_pago"]
    assert [len(b) for b in batches] == [6, 5]  # three accounts per batch


def _all_accounts(engine):
    with engine.connect() as conn:
        ids = sorted(conn.execute(select(store.accounts.c.id)).scalars())
        return loader.load_accounts(conn, ids)


def test_candidates_lose_nothing_over_time(database_url, tmp_path):
    """At every moment of a sweep over four months, planning the candidates equals planning every account."""
    as_of = datetime(2026, 11, 20, 9, tzinfo=UTC)
    lines = list(sample.generate(60, as_of, in_window=False)) + _state()
    engine = store.connect(database_url)
    from dunning.billing import importer
    with write_jsonl(tmp_path / "s.jsonl", lines).open("rb") as stream:
        assert importer.import_stream(engine, stream, batch_size=50).rejected == 0
    settings = load_settings().model_copy(update={"database": load_settings().database.model_copy(
        update={"batch_size": 25})})
    everyone = _all_accounts(engine)
    stride = timedelta(hours=19, minutes=13) if engine.dialect.name == "sqlite" else timedelta(hours=43, minutes=7)
    moment, checked = as_of - timedelta(days=95), 0
    while moment < as_of + timedelta(days=30):
        found = [p for batch in candidates.iter_plan(engine, moment, settings, LOCALES) for p in batch]
        assert found == plan(everyone, set(), moment, settings, locales=LOCALES), moment
        checked += bool(found)
        moment += stride
    engine.dispose()
    assert checked > (100 if engine.dialect.name == "sqlite" else 50)
