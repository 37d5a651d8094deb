"""`dunning report --format json` on a scenario of known sends, clicks and settlements: exact figures, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import select

from dunning import store
from dunning.cli import main
from tests.report.conftest import EUR_80, EUR_100, USD_20

KEY_1 = "card_charge_failed:acct_1:pm_1:ch_1"


def _report(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["report", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _row(sent: int, clicked: int, settled: int, recovered: dict, median: float | None, **labels) -> dict:
    return {**labels, "sent": sent, "clicked": clicked, "settled": settled, "recovered": recovered,
            "median_days_to_settle": median}


def test_the_report_gives_exact_counts_amounts_and_median_days(scenario, capsys):
    """Each settlement counts once, for the last email to its group before it, when within 30 days of it."""
    report = _report(capsys)
    assert report["window_days"] == 30 and report["period"] == {"from": None, "to": None}
    assert report["overall"] == _row(8, 3, 3, {"EUR": "180.00", "USD": "20.00"}, 1.5)
    assert report["by_notice"] == [
        _row(1, 0, 0, {}, None, notice="balance_settled", stage=None),
        _row(3, 2, 2, {**EUR_100, **USD_20}, 2.25, notice="card_charge_failed", stage=None),
        _row(2, 0, 0, {}, None, notice="past_due", stage=1),
        _row(2, 1, 1, EUR_80, 1.0, notice="past_due", stage=2)]
    assert [row["locale"] for row in report["by_locale"]] == ["ar-EG", "de-DE", "fr-FR", "sv-SE"]
    assert report["by_locale"] == [
        _row(2, 1, 1, EUR_80, 1.0, locale="ar-EG"), _row(2, 0, 0, {}, None, locale="de-DE"),
        _row(2, 2, 1, EUR_100, 3.0, locale="fr-FR"), _row(2, 0, 1, USD_20, 1.5, locale="sv-SE")]
    assert report["by_segment"] == [_row(4, 2, 1, EUR_100, 3.0, segment=None),
                                    _row(4, 1, 2, {**EUR_80, **USD_20}, 1.25, segment="smb")]
    assert report["by_week"] == [_row(5, 2, 2, {**EUR_100, **USD_20}, 2.25, week="2026-11-16"),
                                 _row(3, 1, 1, EUR_80, 1.0, week="2026-11-23")]


def test_a_period_counts_its_own_emails_and_credits_no_earlier_one(scenario, capsys):
    """--from leaves earlier emails out, and a settlement whose last email came before the period counts nowhere."""
    report = _report(capsys, "--from", "2026-11-23", "--to", "2026-11-29")
    assert report["period"] == {"from": "2026-11-23", "to": "2026-11-29"}
    assert report["overall"] == _row(3, 1, 1, EUR_80, 1.0)
    assert _report(capsys, "--to", "2026-11-22")["overall"] == _row(5, 2, 2, {**EUR_100, **USD_20}, 2.25)


def test_a_longer_window_credits_the_late_settlement(scenario, capsys, monkeypatch):
    """report.window_days decides how late a settlement may come: at 40 days the JPY payment counts."""
    monkeypatch.setenv("DUNNING_REPORT__WINDOW_DAYS", "40")
    overall = _report(capsys)["overall"]
    assert overall["settled"] == 4 and overall["recovered"] == {"EUR": "180.00", "JPY": "1500", "USD": "20.00"}


def test_an_email_that_answered_two_keys_counts_once(scenario, capsys):
    """One email holding two notice keys (one per subscription it speaks for) is one email sent, one click."""
    engine = store.connect(scenario)
    with engine.begin() as conn:
        first = conn.execute(select(store.notices).where(store.notices.c.key == KEY_1)).mappings().one()
        conn.execute(store.notices.insert().values({**first, "key": KEY_1 + ":second-subscription"}))
    assert _report(capsys)["overall"] == _row(8, 3, 3, {"EUR": "180.00", "USD": "20.00"}, 1.5)
