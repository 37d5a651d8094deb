"""The report's scenario: known sends, clicks and settlements over two weeks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dunning import store
from dunning.cli import main
from dunning.delivery.capture import CaptureServer
from dunning.serve import lookups
from dunning.settings import load_settings
from tests.scenario import AS_OF, account, import_accounts, run_job

DAY = timedelta(days=1)
EUR_100, EUR_80, USD_20 = ({"EUR": "100.00"}, {"EUR": "80.00"}, {"USD": "20.00"})


def _accounts(paid: bool = False) -> dict[str, dict]:
    return {
        "acct_1": account(1, paid=paid),  # card_charge_failed, paid 3 days after its email
        "acct_2": account(2, paid=paid, total="50.00"),  # card_charge_failed, never paid
        "acct_3": account(3, "ar-EG", "Africa/Cairo", due="2026-11-15", total="80.00", paid=paid, segment="smb"),
        "acct_4": account(4, "de-DE", "Europe/Berlin", due="2026-11-15", currency="JPY", total="1500", paid=paid),
        "acct_5": account(5, "sv-SE", "Europe/Stockholm", currency="USD", total="20.00", paid=paid, segment="smb"),
    }


@pytest.fixture
def scenario(database_url, monkeypatch, tmp_path):
    """Eight emails over two weeks, three of them clicked, three settlements in the window and one after it."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", database_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "report-test-signing-key")
    import_accounts(database_url, list(_accounts().values()), AS_OF - DAY)
    paid = _accounts(paid=True)
    with CaptureServer(port=0) as capture:
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(capture.port))
        settings = load_settings()
        assert run_job(settings, AS_OF).sent == 5  # card_charge_failed ×3, past_due 1 ×2
        import_accounts(database_url, [paid["acct_5"]], AS_OF + 1.5 * DAY)
        assert run_job(settings, AS_OF + 3 * DAY).sent == 3  # past_due 2 ×2, balance_settled (acct_5)
    path = tmp_path / "paid.jsonl"
    path.write_text(json.dumps(paid["acct_1"]) + "\n")
    assert main(["import", str(path), "--as-of", (AS_OF + 3 * DAY).isoformat()]) == 0
    import_accounts(database_url, [paid["acct_3"]], AS_OF + 4 * DAY)
    import_accounts(database_url, [paid["acct_4"]], AS_OF + 40 * DAY)  # past the 30-day window
    engine = store.connect(database_url)
    for key, times in (("card_charge_failed:acct_1:pm_1:ch_1", 2), ("card_charge_failed:acct_2:pm_2:ch_2", 1),
                       ("past_due:acct_3:pm_3:2026-11-15:2", 1)):
        for _ in range(times):
            lookups.record_click(engine, key=key, email_id=lookups.email_of(engine, key), purpose="settlement",
                                 at=AS_OF + DAY)
    return database_url
