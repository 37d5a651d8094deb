"""The billing-state import contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from dunning import store
from dunning.billing import importer, loader
from dunning.billing.contract import Account
from dunning.cli import main

FULL = {
    "id": "acct_1", "name": "Contoso <SARL> & \"Co\" 🚀 شركة", "email": "compta@contoso.example",
    "cc": ["dg@contoso.example", "audit@contoso.example"], "locale": "fr-FR", "timezone": "Europe/Paris",
    "payment_methods": [
        {"id": "pm_1", "type": "card", "brand": "visa", "last4": "4242", "exp_month": 3, "exp_year": 2027},
        {"id": "pm_2", "type": "invoice"}],
    "subscriptions": [
        {"id": "sub_1", "name": "Paiement à l'utilisation", "payment_method": "pm_1", "status": "past_due"},
        {"id": "sub_2", "name": "Stockage", "payment_method": "pm_2", "status": "cancelled",
         "cancelled_at": "2026-11-10T23:30:00-05:00", "cancel_reason": "non_payment", "data_deleted": False}],
    "invoices": [
        {"id": "inv_1", "subscription": "sub_1", "currency": "EUR", "total": "1234.50", "amount_paid": "34.50",
         "issued_date": "2026-10-20", "due_date": "2026-11-01", "status": "open"},
        {"id": "inv_2", "subscription": "sub_2", "currency": "JPY", "total": "1500",
         "issued_date": "2026-10-01", "due_date": "2026-10-15", "status": "void"}],
    "charges": [
        {"id": "ch_1", "invoice": "inv_1", "payment_method": "pm_1", "attempted_at": "2026-11-01T06:00:00Z",
         "outcome": "failed", "failure_code": "insufficient_funds", "next_retry_at": "2026-11-04T06:00:00Z"},
        {"id": "ch_2", "invoice": "inv_1", "payment_method": "pm_1", "attempted_at": "2026-11-04T06:00:00+01:00",
         "outcome": "succeeded"}],
}


def _jsonl(*accounts: dict) -> bytes:
    return b"".join(json.dumps(a, ensure_ascii=False).encode() + b"\n" for a in accounts)


def _import(url: str, data: bytes, batch_size: int = 1000):
    errors: list = []
    engine = store.connect(url)
    summary = importer.import_stream(engine, io.BytesIO(data), batch_size=batch_size, on_error=errors.append)
    return engine, summary, [str(e) for e in errors]


def test_every_field_round_trips(database_url):
    """Every field of the contract comes back from the store exactly as imported."""
    engine, summary, errors = _import(database_url, _jsonl(FULL))
    assert errors == [] and summary.imported == 1
    with engine.connect() as conn:
        (account,) = loader.load_accounts(conn, ["acct_1"])
    assert account.name == FULL["name"] and account.cc == FULL["cc"]
    assert account.locale == "fr-FR" and account.timezone == "Europe/Paris"
    assert account.payment_methods[0].model_dump() == FULL["payment_methods"][0]
    assert account.payment_methods[1].type == "invoice" and account.payment_methods[1].last4 is None
    cancelled = account.subscriptions[1]
    assert cancelled.cancelled_at == datetime(2026, 11, 11, 4, 30, tzinfo=UTC)
    assert (cancelled.cancel_reason, cancelled.data_deleted) == ("non_payment", False)
    first, second = account.invoices
    assert (first.total, first.amount_paid, first.outstanding) == (Decimal("1234.50"), Decimal("34.50"),
                                                                   Decimal("1200.00"))
    assert first.due_date == date(2026, 11, 1) and first.issued_date == date(2026, 10, 20)
    assert (second.currency, second.total, second.status) == ("JPY", Decimal("1500"), "void")
    failed, succeeded = account.charges
    assert failed.next_retry_at == datetime(2026, 11, 4, 6, tzinfo=UTC)
    assert account == Account.model_validate(FULL)
    for record in (account, *account.payment_methods, *account.subscriptions, *account.invoices, *account.charges):
        assert record.model_fields_set == set(type(record).model_fields) and record.model_extra == {}
    assert failed.failure_code == "insufficient_funds"
    assert succeeded.attempted_at == datetime(2026, 11, 4, 5, tzinfo=UTC)


def test_every_account_loads_back_as_validated(database_url):
    """Each account of the sample, read back, equals the account the contract validated, field by field,
    in the order asked for (children in id order); unknown ids are skipped."""
    from dunning.billing import sample
    accounts = list(sample.generate(150, datetime(2026, 11, 20, 12, tzinfo=UTC), mix="all-due"))
    engine, summary, errors = _import(database_url, _jsonl(*accounts))
    assert errors == [] and summary.imported == len(accounts)
    expected = {}
    for raw in accounts:
        account = Account.model_validate(raw)
        for children in ("payment_methods", "subscriptions", "invoices", "charges"):
            getattr(account, children).sort(key=lambda child: child.id)
        expected[account.id] = account.model_dump()
    asked = list(reversed(expected))
    asked.insert(7, "acct_unknown")
    with engine.connect() as conn:
        loaded = loader.load_accounts(conn, asked)
    assert [account.id for account in loaded] == [i for i in asked if i != "acct_unknown"]
    assert [account.model_dump() for account in loaded] == [expected[account.id] for account in loaded]
    assert sum(len(account.charges) for account in loaded) > 0


def test_loaded_values_have_the_types_the_contract_gives_them(database_url):
    """Read back from the store, each value is of the contract's own type on either database: a bool (not the
    integer SQLite stores), a date, a datetime in UTC, a Decimal, an int, a str or None."""
    account = copy.deepcopy(FULL)
    account["dunning_paused_until"] = "2026-12-01T08:00:00+09:00"
    account["subscriptions"][1]["data_deleted"] = True
    engine, _summary, errors = _import(database_url, _jsonl(account))
    assert errors == []
    with engine.connect() as conn:
        (loaded,) = loader.load_accounts(conn, ["acct_1"])
    expected = Account.model_validate(account)
    for field in ("payment_methods", "subscriptions", "invoices", "charges"):
        getattr(expected, field).sort(key=lambda child: child.id)
    pairs = [(loaded, expected), *((mine, theirs) for field in ("payment_methods", "subscriptions", "invoices",
                                                              "charges")
                                   for mine, theirs in zip(getattr(loaded, field), getattr(expected, field),
                                                           strict=True))]
    for mine, theirs in pairs:
        for name, value in mine.__dict__.items():
            if not isinstance(value, list):
                assert type(value) is type(getattr(theirs, name)), (type(mine).__name__, name)
                assert value == getattr(theirs, name), (type(mine).__name__, name)
            if isinstance(value, datetime):
                assert value.tzinfo is UTC, (type(mine).__name__, name)
    assert loaded.subscriptions[1].data_deleted is True
    assert loaded.dunning_paused_until == datetime(2026, 11, 30, 23, tzinfo=UTC)


def test_owed_flag_follows_status_and_outstanding(database_url):
    """Only open invoices with an outstanding amount are marked owed in the store."""
    account = copy.deepcopy(FULL)
    account["invoices"].append({"id": "inv_3", "subscription": "sub_1", "currency": "EUR", "total": "10",
                                "amount_paid": "10", "issued_date": "2026-10-01", "due_date": "2026-10-02",
                                "status": "open"})
    engine, _summary, _errors = _import(database_url, _jsonl(account))
    with engine.connect() as conn:
        owed = dict(conn.execute(select(store.invoices.c.id, store.invoices.c.owed)).all())
    assert owed == {"inv_1": True, "inv_2": False, "inv_3": False}


def test_an_invoice_payment_page_is_stored_and_cleared_with_its_record(database_url):
    """An invoice's optional payment_url is kept for the links' landing; a record without it clears it."""
    account = copy.deepcopy(FULL)
    account["invoices"][0]["payment_url"] = "https://pay.example.com/inv_1"
    engine, _summary, errors = _import(database_url, _jsonl(account))
    pages = select(store.invoices.c.id, store.invoices.c.hosted_invoice_url)
    with engine.connect() as conn:
        assert (errors, dict(conn.execute(pages).all())) == ([], {"inv_1": "https://pay.example.com/inv_1",
                                                                  "inv_2": None})
    importer.import_stream(engine, io.BytesIO(_jsonl(FULL)), batch_size=10)
    with engine.connect() as conn:
        assert dict(conn.execute(pages).all()) == {"inv_1": None, "inv_2": None}


def _variant(**changes) -> dict:
    account = copy.deepcopy(FULL)
    for path, value in changes.items():
        target = account
        parts = path.split("__")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is KeyError:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value
    return account


BAD_LINES = [
    ("missing email", _variant(email=KeyError), "line 2 (acct_1): email: required field is missing"),
    ("bad email, not echoed", _variant(email="jane.doe at contoso"), "line 2 (acct_1): email: not an email address"),
    ("missing invoice total", _variant(invoices__0__total=KeyError),
     "line 2 (acct_1): invoices[0].total: required field is missing"),
    ("wrong type", _variant(payment_methods__0__exp_month="3"), "line 2 (acct_1): payment_methods[0].exp_month:"),
    ("float amount", _variant(invoices__0__total=1234.5),
     'line 2 (acct_1): invoices[0].total: must be a decimal string like "123.45", not float 1234.5'),
    ("bad date", _variant(invoices__0__due_date="2026-13-01"),
     'line 2 (acct_1): invoices[0].due_date: not a date: "2026-13-01"'),
    ("date-time without offset", _variant(charges__0__attempted_at="2026-11-01T06:00:00"),
     "line 2 (acct_1): charges[0].attempted_at: not an RFC 3339 date-time with an offset"),
    ("unknown currency", _variant(invoices__0__currency="EUX"),
     'line 2 (acct_1): invoices[0].currency: unknown ISO 4217 currency: "EUX"'),
    ("too many decimals for JPY", _variant(invoices__1__total="1500.5"),
     "line 2 (acct_1): invoices[1].total: JPY has 0 decimals, got 1500.5"),
    ("unknown timezone", _variant(timezone="Europe/Atlantis"),
     'line 2 (acct_1): timezone: unknown IANA time zone: "Europe/Atlantis"'),
    ("bad locale", _variant(locale="not a locale"), 'line 2 (acct_1): locale: not a BCP 47 locale'),
    ("unknown payment method", _variant(subscriptions__0__payment_method="pm_9"),
     'line 2 (acct_1): subscriptions[0].payment_method: unknown payment method "pm_9"'),
    ("unknown invoice", _variant(charges__1__invoice="inv_9"),
     'line 2 (acct_1): charges[1].invoice: unknown invoice "inv_9"'),
    ("duplicate ids", _variant(invoices__1__id="inv_1"), 'line 2 (acct_1): invoices[1].id: duplicate id "inv_1"'),
    ("bad status", _variant(invoices__0__status="pending"), "line 2 (acct_1): invoices[0].status: input should be"),
    ("payment page not https", _variant(invoices__0__payment_url="http://pay.example.com/inv_1"),
     "line 2 (acct_1): invoices[0].payment_url: not an https:// URL"),
    ("cancelled without date", _variant(subscriptions__1__cancelled_at=KeyError),
     "line 2 (acct_1): subscriptions[1]: cancelled_at is required when status is cancelled"),
]


@pytest.mark.parametrize("bad, expected", [(b, e) for _n, b, e in BAD_LINES], ids=[n for n, _b, _e in BAD_LINES])
def test_bad_record_is_rejected_alone_with_a_precise_message(sqlite_url, bad, expected):
    """A record breaking the contract is rejected with line, account, field path and reason; its neighbours import."""
    good_before = dict(FULL, id="acct_0", payment_methods=[], subscriptions=[], invoices=[], charges=[])
    good_after = dict(good_before, id="acct_2")
    _engine, summary, errors = _import(sqlite_url, _jsonl(good_before, bad, good_after))
    assert (summary.imported, summary.rejected) == (2, 1)
    assert len(errors) == 1 and errors[0].startswith(expected), errors[0]


RAW_BAD_LINES = [
    ("malformed JSON", b'{"id": "acct_9", "name": }\n', "line 2: not valid JSON: Expecting value at column 26"),
    ("not an object", b'["acct_9"]\n', "line 2: not a JSON object but list"),
    ("non-UTF-8 bytes", b'{"id": "acct_9", "name": "Caf\xe9"}\n', "line 2: not UTF-8: invalid byte 0xe9 at byte 30"),
]


@pytest.mark.parametrize("raw, expected", [(r, e) for _n, r, e in RAW_BAD_LINES],
                         ids=[n for n, _r, _e in RAW_BAD_LINES])
def test_unreadable_line_is_rejected_alone(sqlite_url, raw, expected):
    """Lines that are not JSON objects in UTF-8 are rejected with their line number; the rest import."""
    good = dict(FULL, id="acct_0", payment_methods=[], subscriptions=[], invoices=[], charges=[])
    _engine, summary, errors = _import(sqlite_url, _jsonl(good) + raw + _jsonl(dict(good, id="acct_2")))
    assert (summary.imported, summary.rejected, errors) == (2, 1, [expected])


def test_truncated_last_line_is_named_as_such(sqlite_url):
    """A file cut off inside its last record reports the truncation and keeps the earlier lines."""
    data = _jsonl(FULL) + json.dumps(FULL).encode()[:80]
    _engine, summary, errors = _import(sqlite_url, data)
    assert summary.imported == 1 and summary.rejected == 1
    assert errors[0].startswith("line 2: truncated line (the file ends inside a record): not valid JSON")


def test_child_id_owned_by_another_account_is_rejected(database_url):
    """An invoice id that already belongs to another account rejects the line instead of stealing the row."""
    other = _variant(id="acct_2")
    _engine, summary, errors = _import(database_url, _jsonl(FULL, other), batch_size=1)
    assert (summary.imported, summary.rejected) == (1, 1)
    assert errors == ['line 2 (acct_2): payment_methods[0].id: id "pm_1" already belongs to account "acct_1"']


def test_unknown_fields_are_warned_not_rejected(sqlite_url):
    """Fields outside the contract are ignored with a warning naming their path."""
    warnings: list = []
    engine = store.connect(sqlite_url)
    account = _variant(plan_tier="gold", invoices__0__po_number="PO-7")
    summary = importer.import_stream(engine, io.BytesIO(_jsonl(account)), batch_size=10,
                                     on_warning=warnings.append)
    assert summary.imported == 1 and summary.rejected == 0
    assert [str(w) for w in warnings] == ["line 1 (acct_1): plan_tier: unknown field, ignored",
                                          "line 1 (acct_1): invoices[0].po_number: unknown field, ignored"]


def _table_rows(engine) -> dict[str, list]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)))
                for t in (store.accounts, store.payment_methods, store.subscriptions, store.invoices, store.charges)}


def test_importing_the_same_file_twice_changes_nothing(database_url):
    """A second import of the same file counts every account unchanged and leaves every row as it was."""
    data = _jsonl(FULL, _variant(id="acct_2", payment_methods__0__id="pm_b1", payment_methods__1__id="pm_b2",
                                 subscriptions__0__id="sb_1", subscriptions__1__id="sb_2",
                                 subscriptions__0__payment_method="pm_b1", subscriptions__1__payment_method="pm_b2",
                                 invoices__0__id="ib_1", invoices__1__id="ib_2", invoices__0__subscription="sb_1",
                                 invoices__1__subscription="sb_2", charges__0__id="cb_1", charges__1__id="cb_2",
                                 charges__0__invoice="ib_1", charges__1__invoice="ib_1",
                                 charges__0__payment_method="pm_b1", charges__1__payment_method="pm_b1"))
    engine, first, _ = _import(database_url, data)
    before = _table_rows(engine)
    _engine, second, _ = _import(database_url, data)
    assert first.imported == 2 and (second.imported, second.updated, second.unchanged) == (0, 0, 2)
    assert _table_rows(engine) == before


def test_changed_line_updates_and_drops_children_no_longer_listed(database_url):
    """A newer line replaces the account: changed fields update, children it no longer lists are removed."""
    engine, _s, _e = _import(database_url, _jsonl(FULL))
    newer = _variant(name="Contoso SAS", invoices__0__amount_paid="1234.50")
    newer["charges"] = newer["charges"][:1]
    _engine, summary, errors = _import(database_url, _jsonl(newer))
    assert errors == [] and (summary.updated, summary.imported) == (1, 0)
    with engine.connect() as conn:
        (account,) = loader.load_accounts(conn, ["acct_1"])
        charges = conn.execute(select(func.count()).select_from(store.charges)).scalar()
    assert account.name == "Contoso SAS" and account.invoices[0].outstanding == 0
    assert charges == 1


def test_sqlite_and_postgresql_hold_the_same_rows(sqlite_url, postgres_url):
    """The sample billing state imported into SQLite and PostgreSQL gives the same rows."""
    from dunning.billing import sample
    as_of = datetime(2026, 11, 20, 12, tzinfo=UTC)
    buffer = io.StringIO()
    sample.write_jsonl(buffer, sample.generate(120, as_of))
    data = buffer.getvalue().encode()
    lite, s1, e1 = _import(sqlite_url, data, batch_size=50)
    pg, s2, e2 = _import(postgres_url, data, batch_size=50)
    assert e1 == e2 == [] and s1.imported == s2.imported == 120
    assert _table_rows(lite) == _table_rows(pg)


def test_import_command_summarises_and_exits_non_zero_on_rejections(tmp_path, capsys):
    """`dunning import` prints imported/updated/rejected and exits 65 when any line was rejected."""
    path = tmp_path / "loader.jsonl"
    path.write_bytes(_jsonl(FULL) + b"{oops\n")
    assert main(["import", str(path), "--json"]) == 65
    out, err = capsys.readouterr()
    assert json.loads(out) == {"imported": 1, "updated": 0, "unchanged": 0, "rejected": 1, "warnings": 0}
    assert "rejected: line 2: not valid JSON" in err
    assert main(["import", str(path)]) == 65
    assert "0 imported, 0 updated, 1 unchanged, 1 rejected" in capsys.readouterr().out


def test_import_command_reports_a_missing_file_cleanly(tmp_path, capsys):
    """A missing input file is an error message and exit code, not a traceback."""
    assert main(["import", str(tmp_path / "nope.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "Traceback" not in err


def test_rejection_of_an_address_does_not_repeat_it(sqlite_url):
    """Personal data stays out of error output: a malformed address is named by its field only."""
    _engine, _summary, errors = _import(sqlite_url, _jsonl(_variant(cc=["jane.doe at contoso"])))
    assert errors == ["line 1 (acct_1): cc[0]: not an email address"]
