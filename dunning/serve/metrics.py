"""/metrics in Starlette: what a registry holds, in Prometheus' text format, read when scraped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = ["routes"]


def routes(registry: CollectorRegistry) -> list[BaseRoute]:
    """GET /metrics: the registry's metrics (collected in a thread: a collector may read the database)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics, methods=["GET"])]
