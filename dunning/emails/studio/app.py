"""The studio's web app: the page, its JSON, the source files it links to, change events and send-a-test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from watchfiles import Change

from dunning.emails.limits import RenderLimits
from dunning.emails.studio.folders import Folders
from dunning.emails.studio.recipients import Recipients
from dunning.emails.studio.sender import TEST_MARK, send_test
from dunning.emails.studio.watch import Broadcast, watch
from dunning.emails.studio.workbench import Workbench
from dunning.errors import DunningError
from dunning.i18n.workflow import display_path
from dunning.settings import Settings

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
PING_SECONDS = 15.0
# Emails are shown in sandboxed srcdoc frames, which inherit this policy: their inline styles and remote
# images load, no script of theirs (nor any other origin's) runs.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
       "font-src 'self' https: data:; connect-src 'self'; frame-ancestors 'none'; form-action 'none'")


def create_app(settings: Settings, *, hosts: list[str], settings_file: Path | None = None) -> Starlette:
    """The app over the settings' templates and locales; requests must name one of `hosts` (DNS rebinding).

    settings_file: where the test recipients are read again whenever it changes.
    """
    folders = Folders.at(Path(settings.i18n.templates_dir), Path(settings.i18n.locales_dir))
    bench = Workbench(folders, settings.i18n.default_locale, RenderLimits.of(settings))
    broadcast = Broadcast()
    recipients = Recipients(settings.studio.test_recipients, settings_file)

    def on_change(changes: set[tuple[Change, str]]) -> dict[str, object]:
        bench.changed()
        if any(change != Change.modified for change, _ in changes):
            bench.forget()
        return {"files": sorted(display_path(Path(path)) for _, path in changes)}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(watch([folders.templates, folders.locales], on_change, broadcast, stop))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)

    async def page(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "studio.html", headers=_headers())

    async def index(_request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(bench.index))

    async def view(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(bench.view, request.query_params.get("scenario", "")))

    async def lint(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(bench.lint, request.query_params.get("scenario", "")))

    async def translations(_request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(bench.translations))

    async def source(request: Request) -> Response:
        if "\x00" in request.path_params["path"]:
            return Response("a path cannot hold a NUL byte\n", 400, media_type="text/plain")
        path = folders.readable(request.path_params["area"], request.path_params["path"])
        if path is None:
            return Response("not a template, catalog or scenario of this studio\n", 404, media_type="text/plain")
        return HTMLResponse(_source_page(path, path.read_text(encoding="utf-8", errors="replace")),
                            headers=_headers())

    async def events(_request: Request) -> Response:
        return StreamingResponse(_stream(broadcast), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def send(request: Request) -> Response:
        refused = _refuse_cross_site(request)
        if refused is not None:
            return refused
        try:
            data = await request.json()
            scenario, locale, to = (str(data[key]) for key in ("scenario", "locale", "to"))
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: JSON nested too deep
            return JSONResponse({"ok": False, "message": 'expected {"scenario", "locale", "to"}'}, 400)
        entry = await run_in_threadpool(bench.find, scenario)
        if entry is None or entry.scenario is None:
            return JSONResponse({"ok": False, "message": f"no readable scenario {scenario!r}"}, 404)
        try:
            email = await run_in_threadpool(bench.render, entry, locale)
            outcome = await send_test(email, to, settings, await run_in_threadpool(recipients.current))
        except DunningError as exc:
            return JSONResponse({"ok": False, "message": exc.message}, 422)
        where = f"{settings.smtp.host}:{settings.smtp.port}"
        message = f"{outcome.status} to {to.strip()} via {where}: {outcome.code or ''} {outcome.reply}".strip()
        return JSONResponse({"ok": outcome.status == "sent", "message": message, "subject": TEST_MARK + email.subject})

    async def favicon(_request: Request) -> Response:
        return Response(status_code=204)

    routes = [Route("/", page), Route("/favicon.ico", favicon), Route("/api/index", index), Route("/api/view", view),
              Route("/api/lint", lint),
              Route("/api/translations", translations), Route("/api/send", send, methods=["POST"]),
              Route("/source/{area}/{path:path}", source), Route("/events", events),
              Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")]
    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])


async def _stream(broadcast: Broadcast) -> AsyncIterator[str]:
    """Server-sent events: one `change` per batch of saved files, `watching` when watching stops or resumes, a
    comment now and then to keep it open."""
    async with broadcast.subscribe() as queue:
        hello = {"generation": broadcast.generation, **broadcast.watching}
        yield f"retry: 500\nevent: hello\ndata: {json.dumps(hello)}\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), PING_SECONDS)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            name = event.pop("event", "change")
            yield f"event: {name}\ndata: {json.dumps(event)}\n\n"


def _refuse_cross_site(request: Request) -> Response | None:
    """Only the studio's own page may send: JSON (no plain form can post it) from the studio's own origin."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"ok": False, "message": "send a JSON body"}, 415)
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return JSONResponse({"ok": False, "message": f"refused: a page of {origin} may not send"}, 403)
    return None


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _source_page(path: Path, text: str) -> str:
    """A source file with an anchor on each line (`#L12`), every character escaped."""
    lines = "".join(f'<span class="line" id="L{n}"><a href="#L{n}">{n}</a>{escape(line)}\n</span>'
                    for n, line in enumerate(text.splitlines(), start=1))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(path.name)}</title>'
            f'<link rel="stylesheet" href="/static/studio.css"></head><body class="source">'
            f'<h1>{escape(display_path(path))}</h1><pre>{lines}</pre></body></html>')
