"""A localstripe server for the module, emptied before each test; a client to shape its data; settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe

API_KEY = "sk_test_dunning"
WEBHOOK_SECRET = "whsec_dunning_test"
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"localstripe exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("localstripe did not start listening")


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str]:
    """The base URL of a localstripe process on a free loopback port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(HERE / "localstripe_server.py"), str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port, process, time.monotonic() + 20)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def api(localstripe_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> stripe.StripeClient:
    """A client of the emptied server; the settings point dunning at it, with the key in the environment."""
    urllib.request.urlopen(urllib.request.Request(f"{localstripe_url}/_config/data", method="DELETE")).close()
    monkeypatch.setenv("DUNNING_STRIPE__API_BASE", localstripe_url)
    monkeypatch.setenv("DUNNING_STRIPE__API_KEY", API_KEY)
    monkeypatch.setenv("DUNNING_STRIPE__WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("DUNNING_STRIPE__MAX_NETWORK_RETRIES", "0")
    monkeypatch.setenv("DUNNING_DATABASE__URL", f"sqlite:///{tmp_path / 'dunning.sqlite3'}")
    # Every minute of the day but the last is inside the window: a plan made now is never deferred.
    monkeypatch.setenv("DUNNING_POLICY__SEND_WINDOW", "00:00-23:59")
    # A card expiring this month is at its first stage on any day of the month.
    monkeypatch.setenv("DUNNING_CARD_EXPIRING__DAYS_BEFORE", "[31, 7]")
    # dunning serve answers the links too, and refuses to start without their signing key.
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "stripe-tests-link-signing-key")
    return stripe.StripeClient(API_KEY, base_addresses={"api": localstripe_url}, max_network_retries=0)


def add_customer(api: stripe.StripeClient, *, email: str | None, card: str = "4242424242424242",
                 expires: tuple[int, int] = (12, 2030), currency: str = "eur", amount: int = 2500,
                 **fields: Any) -> dict[str, str]:
    """A customer with a default card and a monthly subscription, whose first invoice is charged at once."""
    customer = api.v1.customers.create(params={**({"email": email} if email else {}), **fields})
    method = api.v1.payment_methods.create(params={"type": "card", "card": {
        "number": card, "exp_month": expires[0], "exp_year": expires[1], "cvc": "123"}})
    api.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    api.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": method.id}})
    product = api.v1.products.create(params={"name": f"Plan {currency.upper()}"})
    plan = api.v1.plans.create(params={"id": f"plan_{customer.id}", "product": product.id, "amount": amount,
                                       "currency": currency, "interval": "month"})
    subscription = api.v1.subscriptions.create(params={"customer": customer.id, "items": [{"plan": plan.id}]})
    return {"customer": customer.id, "payment_method": method.id, "subscription": subscription.id}


def this_month() -> tuple[int, int]:
    now = datetime.now(UTC)
    return now.month, now.year


def run_dunning(*argv: str) -> subprocess.CompletedProcess[str]:
    """The dunning command, in a process of its own (as cron runs it)."""
    return subprocess.run([sys.executable, "-m", "dunning", *argv], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
