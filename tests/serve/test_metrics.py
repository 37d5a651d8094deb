"""/metrics for `dunning serve`: the run's collector over Starlette, the outbox read at each scrape."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from dunning.run.clock import SYSTEM_CLOCK
from dunning.run.metrics import Report, registry_of
from dunning.serve.metrics import routes


def _get(app: Starlette, path: str) -> tuple[int, dict[str, str], str]:
    """One GET through the ASGI interface itself: status, headers, body."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [],
             "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body.decode()


def test_metrics_route_serves_the_registry_with_the_outbox_read_at_each_scrape():
    """GET /metrics answers in the text format; the outbox gauge is read anew at every scrape."""
    queue = {"queued": 7}
    report = Report("serve", SYSTEM_CLOCK, outbox=lambda: dict(queue))
    app = Starlette(routes=routes(registry_of(report)))
    status, headers, body = _get(app, "/metrics")
    queue["queued"] = 2
    _status, _headers, later = _get(app, "/metrics")

    def queued(text: str) -> float:
        return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "dunning_outbox_emails" and s.labels["state"] == "queued")

    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    assert (queued(body), queued(later)) == (7, 2)
    assert 'dunning_emails_total{command="serve",outcome="sent"} 0.0' in body
