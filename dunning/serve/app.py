"""The web server's application: every route module's routes, under the configured prefix."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.routing import Mount

from dunning import store
from dunning.serve import links
from dunning.settings import Settings

__all__ = ["build_app"]


def _now() -> datetime:
    return datetime.now(UTC)


def build_app(settings: Settings, *, clock: Callable[[], datetime] = _now) -> Starlette:
    """The Starlette app of `dunning serve`; `clock` gives the current moment (tests pass their own)."""
    engine = store.connect(settings.database.url)
    routes = [*links.routes(settings, engine, clock)]
    return Starlette(routes=[Mount(settings.serve.prefix, routes=routes)])
