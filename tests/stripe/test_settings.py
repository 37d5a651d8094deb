"""[stripe] settings: secrets from the environment only, TLS unless a loopback test server, the app's routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.routing import Route

from dunning.errors import SettingsError
from dunning.serve.app import build_app
from dunning.settings import load_settings


@pytest.mark.parametrize("key", ["api_key", "webhook_secret"])
def test_a_secret_in_the_settings_file_is_refused(tmp_path: Path, key: str) -> None:
    """The file may not hold the API key or the webhook secret; the error names the variable to set."""
    path = tmp_path / "stripe.toml"
    path.write_text(f'[stripe]\n{key} = "sk_live_oops"\n')
    with pytest.raises(SettingsError, match=f"DUNNING_STRIPE__{key.upper()}"):
        load_settings(path)


@pytest.mark.parametrize(("base", "accepted"), [
    ("https://api.stripe.com", True), ("http://127.0.0.1:8420", True), ("http://[::1]:8420", True),
    ("http://api.stripe.com", False), ("http://10.0.0.5:8420", False), ("stripe.com", False)])
def test_api_base_needs_tls_unless_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: str,
                                               accepted: bool) -> None:
    """Plain http only reaches a test server on this machine."""
    monkeypatch.setenv("DUNNING_STRIPE__API_BASE", base)
    if accepted:
        assert load_settings().stripe.api_base == base
    else:
        with pytest.raises(SettingsError, match="stripe.api_base"):
            load_settings()


def test_the_webhook_is_served_only_with_both_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the webhook secret the app has no webhook route; with it and the key, POST /webhooks/stripe."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", f"sqlite:///{tmp_path / 'd.sqlite3'}")
    monkeypatch.setenv("DUNNING_STRIPE__API_KEY", "sk_test_x")
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "settings-tests-link-signing-key")
    assert [route for route in build_app(load_settings()).routes if route.path == "/webhooks/stripe"] == []
    monkeypatch.setenv("DUNNING_STRIPE__WEBHOOK_SECRET", "whsec_x")
    [route] = [route for route in build_app(load_settings()).routes if route.path == "/webhooks/stripe"]
    assert isinstance(route, Route) and route.methods == {"POST"}


def test_serve_listens_on_loopback_unless_told_otherwise() -> None:
    """`dunning serve` defaults to serve.host and serve.port: 127.0.0.1:8000."""
    settings = load_settings()
    assert (settings.serve.host, settings.serve.port) == ("127.0.0.1", 8000)
