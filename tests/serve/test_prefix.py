"""The routes under a reverse proxy's prefix, their redirect as an HTTP client sees it, and what they log."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

import pytest

from dunning.cli import main
from dunning.errors import SettingsError
from dunning.links import require_signing_key, sign_token
from dunning.settings import load_settings
from tests.scenario import AS_OF, account, import_accounts
from tests.serve.conftest import serve


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(url: str) -> tuple[int, str | None]:
    """Status and Location of a GET, the redirect not followed."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url) as response:
            return response.status, response.headers.get("Location")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location")


@pytest.fixture
def settings(sqlite_url, monkeypatch):
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "prefix-test-signing-key")
    monkeypatch.setenv("DUNNING_SERVE__PREFIX", "/billing")
    monkeypatch.setenv("DUNNING_LINKS__PAY_URL", "https://pay.example.com/{account}/{payment_method}?email={email}")
    import_accounts(sqlite_url, [account(1)], AS_OF)
    return load_settings()


def test_the_routes_answer_under_the_prefix_alone(settings, caplog):
    """/billing/settle/{token} redirects (303) to links.pay_url; /settle/{token} is not found; the log has ids only."""
    token = sign_token(require_signing_key(settings.links), account="acct_1", payment_method="pm_1", key="k/1 ?")
    caplog.set_level(logging.INFO, logger="dunning.serve")
    with serve(settings) as server:
        assert server.url.endswith("/billing")
        assert _get(f"{server.url}/settle/{token}") == (303, "https://pay.example.com/acct_1/pm_1?email=")
        assert _get(f"{server.url.removesuffix('/billing')}/settle/{token}")[0] == 404
    assert "settlement link followed: account acct_1, email None" in caplog.text
    assert "@" not in caplog.text and token not in caplog.text


def test_a_prefix_must_be_a_path(monkeypatch):
    """serve.prefix must start with a slash and not end with one."""
    monkeypatch.setenv("DUNNING_SERVE__PREFIX", "billing/")
    with pytest.raises(SettingsError, match="serve.prefix"):
        load_settings()


def test_serve_refuses_to_start_without_a_signing_key(sqlite_url, monkeypatch, capsys):
    """`dunning serve` with no DUNNING_LINKS__KEYS exits 78 (configuration) before listening."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", sqlite_url)
    assert main(["serve", "--port", "0"]) == 78
    assert "DUNNING_LINKS__KEYS" in capsys.readouterr().err
