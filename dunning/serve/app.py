"""The web app of `dunning serve`: the routes of every route module, in one Starlette application."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from dunning.run.clock import SYSTEM_CLOCK, Clock
from dunning.serve import webhooks
from dunning.settings import Settings

__all__ = ["RouteModule", "ROUTE_MODULES", "build_app"]


class RouteModule(Protocol):
    """A module of dunning.serve that serves some paths."""

    def routes(self, settings: Settings, *, clock: Clock) -> list[BaseRoute]:
        """Its routes; none when the settings leave its feature off."""
        ...


ROUTE_MODULES: Sequence[RouteModule] = (webhooks,)


def build_app(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> Starlette:
    """The application serving every route module's routes."""
    return Starlette(routes=[route for module in ROUTE_MODULES for route in module.routes(settings, clock=clock)])
