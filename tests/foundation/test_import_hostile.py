"""Hostile lines: each is rejected alone with a reason, or imported and then planned, rendered and built."""

from __future__ import annotations

import copy
import io
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dunning import store
from dunning.billing import importer
from dunning.cli import main
from dunning.delivery.mime import build_message
from dunning.links import LinkSigner
from dunning.planning import candidates, notice_context
from dunning.run.enqueue import plan_entries
from dunning.run.job import make_renderer
from dunning.run.summary import RunSummary
from dunning.settings import load_settings

AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)
# An account with a failed charge and a past-due invoice: due for notices at AS_OF.
GOOD = {
    "id": "acct_fuzz", "name": "Contoso", "email": "billing@contoso.example", "cc": ["cfo@contoso.example"],
    "locale": "fr-FR", "timezone": "Europe/Paris",
    "payment_methods": [{"id": "pm_f", "type": "card", "brand": "visa", "last4": "4242", "exp_month": 3,
                         "exp_year": 2027}],
    "subscriptions": [{"id": "sub_f", "name": "Plan", "payment_method": "pm_f", "status": "past_due"}],
    "invoices": [{"id": "inv_f", "subscription": "sub_f", "currency": "EUR", "total": "1234.50",
                  "issued_date": "2026-10-20", "due_date": "2026-11-12", "status": "open"}],
    "charges": [{"id": "ch_f", "invoice": "inv_f", "payment_method": "pm_f", "attempted_at": "2026-11-19T06:00:00Z",
                 "outcome": "failed", "failure_code": "insufficient_funds", "next_retry_at": "2026-11-22T06:00:00Z"}],
}


def _line(account: dict) -> bytes:
    return json.dumps(account).encode() + b"\n"  # ASCII: a lone surrogate goes as its escape, as in a file


def _neighbours() -> tuple[bytes, bytes]:
    """Two good lines of other accounts, around the line under test."""
    def other(n: int) -> dict:
        account = copy.deepcopy(GOOD)
        account["id"] = f"acct_good_{n}"
        for key, items in (("payment_methods", "pm"), ("subscriptions", "sub"), ("invoices", "inv"),
                           ("charges", "ch")):
            for item in account[key]:
                item["id"] = f"{items}_good_{n}"
        account["subscriptions"][0]["payment_method"] = f"pm_good_{n}"
        account["invoices"][0]["subscription"] = f"sub_good_{n}"
        account["charges"][0].update(invoice=f"inv_good_{n}", payment_method=f"pm_good_{n}")
        return account
    return _line(other(1)), _line(other(2))


def _import_around(url: str, middle: bytes) -> tuple[importer.ImportSummary, list[str]]:
    before, after = _neighbours()
    errors: list = []
    summary = importer.import_stream(store.connect(url), io.BytesIO(before + middle + after), batch_size=2,
                                     on_error=errors.append)
    return summary, [str(error) for error in errors]


def _plan_render_build(url: str) -> int:
    """Plan every account at AS_OF, then render and build every email to send; how many were built."""
    settings = load_settings().model_copy(update={"database": load_settings().database.model_copy(
        update={"url": url})})
    renderer = make_renderer(settings)
    built = 0
    for accounts, planned in candidates.iter_batches(store.connect(url), AS_OF, settings,
                                                      renderer.available_locales):
        for entry in plan_entries(planned, accounts, settings, LinkSigner(settings.links), RunSummary(), now=AS_OF):
            if entry.status != "send":
                continue
            payload = orjson.loads(entry.payload)  # type: ignore[arg-type]
            email = renderer.render(entry.notice, payload["locale"], notice_context.revive(payload["context"]))
            build_message(email, from_address="billing@example.com", from_name="Billing", reply_to=None,
                          to=payload["to"], cc=payload["cc"], message_id="<x@example.com>", date=AS_OF)
            built += 1
    return built


def _with(path: tuple, value: object) -> bytes:
    account = copy.deepcopy(GOOD)
    target = account
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return _line(account)


HOSTILE = {
    "integer of 5,000 digits": (b'{"id": "acct_x", "n": ' + b"9" * 5000 + b"}\n", "not valid JSON"),
    "nesting 5,000 deep": (b'{"id": "acct_x", "n": ' + b"[" * 5000 + b"]" * 5000 + b"}\n", "not valid JSON"),
    "lone surrogate": (b'{"id": "acct_x", "name": "\\ud800"}\n', "lone surrogate"),
    "attempted_at at year 1 with an offset": (_with(("charges", 0, "attempted_at"), "0001-01-01T00:00:00+01:00"),
                                              "out of range"),
    "cancelled_at at 9999 with an offset": (_with(("subscriptions", 0, "cancelled_at"), "9999-12-31T23:00:00-05:00"),
                                            "out of range"),
    "next_retry_at at 9999": (_with(("charges", 0, "next_retry_at"), "9999-12-31T00:00:00Z"), "out of range"),
    "total of 29 significant digits": (_with(("invoices", 0, "total"), "1234567890123456789012345678.9"),
                                       "digits"),
    "a name of 100,000 characters": (_with(("name",), "x" * 100_000), "at most 1000"),
    "unterminated string": (b'{"id": "acct_x", "name": "unterminated\n', "Unterminated string starting at column"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_line_is_rejected_alone_with_a_reason(name, database_url):
    """Each hostile line of the contract is rejected with its line number and a reason; its neighbours import."""
    raw, reason = HOSTILE[name]
    summary, errors = _import_around(database_url, raw)
    assert (summary.imported, summary.rejected) == (2, 1), errors
    (error,) = errors
    assert error.startswith("line 2") and reason in error, error


def test_the_command_exits_65_on_hostile_lines_never_70(tmp_path, monkeypatch, capsys):
    """`dunning import` of a file full of hostile lines reports each and exits 65 (bad data), not 70 (a bug)."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", f"sqlite:///{tmp_path / 'd.sqlite3'}")
    before, after = _neighbours()
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(before + b"".join(raw for raw, _ in HOSTILE.values()) + after)
    assert main(["import", str(path), "--json"]) == 65
    out, err = capsys.readouterr()
    assert json.loads(out) == {"imported": 2, "updated": 0, "unchanged": 0, "rejected": len(HOSTILE), "warnings": 0}
    assert err.count("rejected: line ") == len(HOSTILE) and "internal error" not in err


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["0001-01-01T00:00:00+01:00", "2099-12-31T23:59:59-12:00", "1970-01-01T00:00:00Z",
                       "9999999999999999999.99", "0.001", "", "2026-02-30", "\ud800"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
paths = st.sampled_from([("name",), ("email",), ("cc",), ("locale",), ("timezone",), ("id",),
                         ("payment_methods", 0, "exp_year"), ("payment_methods", 0, "last4"),
                         ("subscriptions", 0, "status"), ("subscriptions", 0, "cancelled_at"),
                         ("invoices", 0, "total"), ("invoices", 0, "amount_paid"), ("invoices", 0, "currency"),
                         ("invoices", 0, "due_date"), ("invoices", 0, "issued_date"),
                         ("charges", 0, "attempted_at"), ("charges", 0, "next_retry_at"),
                         ("charges", 0, "failure_code")])
mutated = st.builds(_with, paths, json_values)
_BODY = _line(GOOD).rstrip(b"\n")   # the line without its end: a flip never joins it to the next one
flipped = st.tuples(st.integers(0, len(_BODY) - 1),
                    st.binary(min_size=1, max_size=3).map(lambda b: b.replace(b"\n", b" "))).map(
    lambda cut: _BODY[:cut[0]] + cut[1] + _BODY[cut[0] + len(cut[1]):] + b"\n")
raw_bytes = st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ") + b"\n")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(mutated, flipped, raw_bytes))
def test_any_line_is_rejected_with_a_message_or_imported_and_then_planned_and_rendered(monkeypatch, line):
    """Arbitrary bytes or a mutated valid line: rejected with a message, or imported then planned, rendered
    and built; the good lines around it are always imported."""
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "test-signing-key")
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'd.sqlite3'}"
        summary, errors = _import_around(url, line)
        assert summary.imported + summary.rejected == 3 or (summary.imported == 2 and not line.strip()), errors
        assert all(error.startswith("line 2") and len(error) > len("line 2: ") for error in errors), errors
        assert _plan_render_build(url) >= 2  # each good neighbour gets its notices, and the line its own
