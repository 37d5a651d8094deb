"""Reads from Stripe with the official library: customers, what the mapping needs of each, and events.

Every object leaves this module as a plain dict; every Stripe error as a dunning error (`StripeSource.call`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import stripe

from dunning.errors import SettingsError, SourceUnavailable
from dunning.settings import StripeSettings
from dunning.sources.stripe.mapping import Bundle, ref

__all__ = ["PAGE", "REQUESTS_PER_CUSTOMER", "StripeSource"]

T = TypeVar("T")
PAGE = 100  # the largest page Stripe's list endpoints give
# A customer's cards, subscriptions, invoices and charges: one list request each (products are cached).
REQUESTS_PER_CUSTOMER = 4


class StripeSource:
    """One Stripe account, read through a `stripe.StripeClient` with the pinned API version (thread-safe)."""

    def __init__(self, settings: StripeSettings, *, client: stripe.StripeClient | None = None) -> None:
        if client is None:
            if settings.api_key is None or not settings.api_key.get_secret_value():
                raise SettingsError("no Stripe API key: set DUNNING_STRIPE__API_KEY (a restricted key with read "
                                    "access is enough)")
            client = stripe.StripeClient(settings.api_key.get_secret_value(), stripe_version=settings.api_version,
                                         base_addresses={"api": settings.api_base},
                                         max_network_retries=settings.max_network_retries)
        self.client, self.api_base = client, settings.api_base
        self._counted = itertools.count(1)
        self.requests = 0
        self._products: dict[str, str] = {}

    def call(self, request: Callable[[], T]) -> T:
        """Run one API request, turning Stripe's errors into the command's exit codes."""
        self.requests = next(self._counted)  # thread-safe: bundles are fetched by several threads
        try:
            return request()
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            raise SettingsError(f"Stripe refused the API key (DUNNING_STRIPE__API_KEY): {_why(exc)}") from None
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            raise SourceUnavailable(f"Stripe cannot be reached at {self.api_base}: {_why(exc)}") from None

    def _list(self, service: Any, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page = self.call(partial(service.list, params={**params, "limit": PAGE}))
        while True:
            for item in page.data:
                yield item.to_dict()
            if not page.has_more or not page.data:
                return
            last = page.data[-1].id
            page = self.call(partial(service.list, params={**params, "limit": PAGE, "starting_after": last}))

    def customers(self) -> Iterator[dict[str, Any]]:
        """Every customer, page by page."""
        return self._list(self.client.v1.customers, {})

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """One customer, or None when it was deleted or never existed."""
        try:
            found = self.call(lambda: self.client.v1.customers.retrieve(customer_id)).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise
        return None if found.get("deleted") else found

    def bundle(self, customer: dict[str, Any]) -> Bundle:
        """The customer with their cards, subscriptions (all statuses), invoices and payment attempts."""
        v1, cid = self.client.v1, customer["id"]
        subscriptions = list(self._list(v1.subscriptions, {"customer": cid, "status": "all"}))
        return Bundle(customer=customer,
                      cards=list(self._list(v1.payment_methods, {"customer": cid, "type": "card"})),
                      subscriptions=subscriptions,
                      invoices=list(self._list(v1.invoices, {"customer": cid})),
                      charges=list(self._list(v1.charges, {"customer": cid})),
                      products=self._product_names(subscriptions))

    def _product_names(self, subscriptions: list[dict[str, Any]]) -> dict[str, str]:
        """Names of the products the subscriptions' first items sell, each fetched once per source."""
        for sub in subscriptions:
            items = (sub.get("items") or {}).get("data") or []
            price = (items[0].get("price") or items[0].get("plan") or {}) if items else {}
            product = ref(price.get("product"))
            if product and product not in self._products:
                found = self.call(partial(self.client.v1.products.retrieve, product))
                self._products[product] = found.to_dict().get("name") or product
        return self._products

    def events_since(self, created: int) -> Iterator[dict[str, Any]]:
        """Events created at or after this Unix time, in the order Stripe lists them."""
        return self._list(self.client.v1.events, {"created": {"gte": created}})


def _why(exc: stripe.StripeError) -> str:
    """The line of Stripe's message that says what happened (a network error's cause is its last line)."""
    lines = [line.strip() for line in (exc.user_message or str(exc)).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]
