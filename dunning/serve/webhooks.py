"""POST /webhooks/stripe: a signed Stripe event refetches the customer it concerns and stores it as a sync does.

The answer goes out as soon as the signature is checked; the refetch runs after it, so Stripe never waits
on its own API. An event is marked applied only once its customer is stored: one whose refetch failed is
applied by the next incremental sync, which reads the same event.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import stripe
from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from dunning import store
from dunning.errors import DunningError
from dunning.run.clock import Clock
from dunning.settings import Settings
from dunning.sources.stripe import state
from dunning.sources.stripe.client import StripeSource
from dunning.sources.stripe.mapping import customer_of
from dunning.sources.stripe.sync import SyncSummary, store_bundles

__all__ = ["PATH", "routes", "signed_at", "StripeWebhook"]

log = logging.getLogger(__name__)

PATH = "/webhooks/stripe"


def routes(settings: Settings, *, clock: Clock) -> list[BaseRoute]:
    """The webhook's route, when both the API key and the webhook secret are set."""
    secret, key = settings.stripe.webhook_secret, settings.stripe.api_key
    if secret is None or key is None or not secret.get_secret_value() or not key.get_secret_value():
        log.info("%s is off: DUNNING_STRIPE__WEBHOOK_SECRET or DUNNING_STRIPE__API_KEY is not set", PATH)
        return []
    hook = StripeWebhook(settings, store.connect(settings.database.url), StripeSource(settings.stripe), clock=clock)
    return [Route(PATH, hook.receive, methods=["POST"])]


def signed_at(header: str) -> int | None:
    """The `t=` timestamp of a Stripe-Signature header."""
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            return int(value)
    return None


class StripeWebhook:
    """Verifies, deduplicates and applies Stripe's events."""

    def __init__(self, settings: Settings, engine: Engine, source: StripeSource, *, clock: Clock) -> None:
        assert settings.stripe.webhook_secret is not None
        self.settings, self.engine, self.source, self.clock = settings, engine, source, clock
        self.secret = settings.stripe.webhook_secret.get_secret_value()

    async def receive(self, request: Request) -> JSONResponse:
        """Answer 400 to anything not signed with the secret recently; 200 to the rest, then apply it."""
        payload = await request.body()
        header = request.headers.get("stripe-signature", "")
        problem = self.refusal(payload, header)
        if problem:
            log.warning("stripe webhook refused: %s", problem)
            return JSONResponse({"error": problem}, status_code=400)
        event: dict[str, Any] = json.loads(payload)
        event_id, customer = str(event["id"]), customer_of(event)
        # The database calls are blocking: in a worker thread, never on the event loop.
        if await run_in_threadpool(state.is_seen, self.engine, event_id):
            return JSONResponse({"status": "already applied", "event": event_id})
        if customer is None:
            await run_in_threadpool(state.mark_seen, self.engine, [event_id], self.clock.now())
            return JSONResponse({"status": "no customer", "event": event_id})
        task = BackgroundTask(self.apply, event_id, customer)
        return JSONResponse({"status": "accepted", "event": event_id}, background=task)

    def refusal(self, payload: bytes, header: str) -> str | None:
        """Why the event must be refused (a bad or old signature, not an event), or None."""
        try:
            # No tolerance here: the age is checked below against the injected clock, not the machine's.
            stripe.WebhookSignature.verify_header(payload.decode("utf-8"), header, self.secret)
        except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError):
            return "the Stripe-Signature does not match the payload and the webhook secret"
        age = self.clock.now().timestamp() - (signed_at(header) or 0)
        if abs(age) > self.settings.stripe.webhook_tolerance_seconds:
            return "the signature is too old (or from the future): a replay is refused"
        event = json.loads(payload)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            return "not an event"
        return None

    def apply(self, event_id: str, customer_id: str) -> None:
        """Refetch the customer, store it as a sync would, then mark the event applied."""
        try:
            found = self.source.customer(customer_id)
            if found is not None:
                summary = SyncSummary(mode="webhook")
                store_bundles(self.engine, [self.source.bundle(found)], self.settings, summary,
                              on_error=lambda text: log.warning("stripe webhook: rejected: %s", text),
                              as_of=self.clock.now())
            state.mark_seen(self.engine, [event_id], self.clock.now())
        except DunningError as exc:
            log.warning("stripe webhook: event %s not applied, the next sync applies it: %s", event_id, exc)
