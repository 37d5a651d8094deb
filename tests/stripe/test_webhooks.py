"""`dunning serve`'s POST /webhooks/stripe: events signed by localstripe apply; forged or old ones do not."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import stripe
import uvicorn
from sqlalchemy import select

from dunning import store
from dunning.cli import main
from dunning.run.clock import ShiftedClock
from dunning.serve.app import build_app
from dunning.settings import load_settings
from tests.stripe.conftest import WEBHOOK_SECRET, add_customer, free_port


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
def server(api: stripe.StripeClient, clock: ShiftedClock) -> Iterator[str]:
    """The webhook's URL on a uvicorn server in a thread, serving build_app's application."""
    port = free_port()
    app = build_app(load_settings(), clock=clock)
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/webhooks/stripe"
    running.should_exit = True
    thread.join(10)


def _name(customer: str) -> str | None:
    engine = store.connect(load_settings().database.url)
    with engine.connect() as conn:
        name = conn.execute(select(store.accounts.c.name).where(store.accounts.c.id == customer)).scalar()
    engine.dispose()
    return name


def _until(check: Any, seconds: float = 15) -> bool:
    """Whether check() becomes true before the deadline (localstripe sends its webhooks a second late)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def _post(url: str, body: bytes, signature: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _signed(body: bytes, at: int, secret: str = WEBHOOK_SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def _event(customer: str, event_id: str = "evt_test_1") -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": "customer.updated", "created": int(time.time()),
                       "data": {"object": {"id": customer, "object": "customer"}}}).encode()


def _register(localstripe_url: str, url: str) -> None:
    body = json.dumps({"url": url, "secret": WEBHOOK_SECRET}).encode()
    request = urllib.request.Request(f"{localstripe_url}/_config/webhooks/dunning", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).close()


def test_a_webhook_from_localstripe_updates_the_store_without_a_sync(api, server, localstripe_url, capsys) -> None:
    """localstripe signs customer.updated with the secret; the customer is refetched and stored."""
    customer = add_customer(api, email="ap@renamed.example", name="Old Name")["customer"]
    assert main(["sync", "stripe"]) == 0
    _register(localstripe_url, server)
    api.v1.customers.update(customer, params={"name": "New Name"})
    assert _until(lambda: _name(customer) == "New Name")


def test_a_forged_webhook_changes_nothing(api, server, clock, capsys) -> None:
    """A signature made with another secret: 400, and the customer is not refetched."""
    customer = add_customer(api, email="ap@forged.example", name="Before")["customer"]
    assert main(["sync", "stripe"]) == 0
    api.v1.customers.update(customer, params={"name": "After"})
    body = _event(customer)
    status, answer = _post(server, body, _signed(body, int(clock.now().timestamp()), secret="whsec_forged"))
    assert status == 400 and "does not match" in answer["error"]
    status, _answer = _post(server, body.replace(b"evt_test_1", b"evt_test_2"), _signed(body, int(time.time())))
    assert status == 400  # a body changed after signing
    assert _name(customer) == "Before"


def test_an_old_signature_is_refused_as_a_replay(api, server, clock, capsys) -> None:
    """A genuine signature made longer ago than the tolerance: 400, nothing stored."""
    customer = add_customer(api, email="ap@replay.example", name="Kept")["customer"]
    assert main(["sync", "stripe"]) == 0
    api.v1.customers.update(customer, params={"name": "Replayed"})
    body = _event(customer)
    signed = _signed(body, int(clock.now().timestamp()))
    clock.advance(timedelta(minutes=6).total_seconds())
    status, answer = _post(server, body, signed)
    assert status == 400 and "too old" in answer["error"]
    assert _name(customer) == "Kept"


def test_an_event_already_applied_is_skipped(api, server, clock, capsys) -> None:
    """The same event id twice: applied once, then answered as already applied."""
    customer = add_customer(api, email="ap@twice.example", name="First")["customer"]
    body = _event(customer, "evt_twice")
    status, answer = _post(server, body, _signed(body, int(clock.now().timestamp())))
    assert (status, answer["status"]) == (200, "accepted")
    assert _until(lambda: _name(customer) == "First")
    assert _until(lambda: _post(server, body, _signed(body, int(clock.now().timestamp())))[1]["status"]
                  == "already applied")


def test_an_event_about_no_customer_is_acknowledged_and_applied(api, server, clock, capsys) -> None:
    """A product's event concerns no customer: 200, marked applied, nothing fetched."""
    body = json.dumps({"id": "evt_product", "object": "event", "type": "product.created",
                       "data": {"object": {"id": "prod_1", "object": "product"}}}).encode()
    status, answer = _post(server, body, _signed(body, int(clock.now().timestamp())))
    assert (status, answer["status"]) == (200, "no customer")
    assert _post(server, body, _signed(body, int(clock.now().timestamp())))[1]["status"] == "already applied"
