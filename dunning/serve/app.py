"""The web app of `dunning serve`: every route module's routes, under the configured prefix."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from dunning import store
from dunning.run.clock import SYSTEM_CLOCK, Clock
from dunning.serve import links, webhooks
from dunning.settings import Settings

__all__ = ["build_app"]


def build_app(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> Starlette:
    """The application serving the links' landing and, when Stripe is set up, its webhooks."""
    # The links' landing is the server's first job: without a signing key it refuses to start (SettingsError).
    routes = [*links.routes(settings, store.connect(settings.database.url), clock.now),
              *webhooks.routes(settings, clock=clock)]
    return Starlette(routes=[Mount(settings.serve.prefix, routes=routes)] if settings.serve.prefix else routes)
