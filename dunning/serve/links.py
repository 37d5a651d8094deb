"""The links' landing: GET /settle/{token} and /update/{token} record a click and redirect (303) to the page
that settles or updates; an expired link gets a page in the account's language (410), a forged one a 400."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dunning.errors import LinkError
from dunning.i18n.catalogs import Catalogs
from dunning.links import LinkClaims, Purpose, expired_claims, require_signing_key, verify_token
from dunning.serve import lookups, pages
from dunning.settings import Settings

__all__ = ["routes", "target_url"]

log = logging.getLogger(__name__)

# Neither page may be kept by a shared cache, and neither tells a browser where it came from.
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def target_url(template: str, claims: LinkClaims, email_id: int | None) -> str:
    """links.pay_url or card_update_url with its {account}, {payment_method} and {email} ids filled in."""
    values = {"account": claims.account, "payment_method": claims.payment_method,
              "email": "" if email_id is None else str(email_id)}
    for name, value in values.items():
        template = template.replace("{" + name + "}", quote(value, safe=""))
    return template


def routes(settings: Settings, engine: Engine, clock: Callable[[], datetime]) -> list[BaseRoute]:
    """The settlement and update links' routes."""
    keys = require_signing_key(settings.links)
    catalogs = Catalogs(Path(settings.i18n.locales_dir), settings.i18n.default_locale)

    def land(purpose: Purpose) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            token = request.path_params["token"]
            try:
                claims = verify_token(token, keys, max_age_days=settings.links.max_age_days, now=clock(),
                                      purpose=purpose)
            except LinkError as exc:
                return _refused(exc, token, purpose)
            return _redirect(claims, purpose)
        return endpoint

    def _redirect(claims: LinkClaims, purpose: Purpose) -> Response:
        email_id = lookups.email_of(engine, claims.key)
        lookups.record_click(engine, key=claims.key, email_id=email_id, purpose=purpose, at=clock())
        log.info("%s link followed: account %s, email %s", purpose, claims.account, email_id,
                 extra={"account": claims.account, "email_id": email_id})
        hosted = lookups.hosted_invoice_url(engine, claims.account, claims.payment_method) \
            if purpose == "settlement" else None
        template = settings.links.pay_url if purpose == "settlement" else settings.links.card_update_url
        return RedirectResponse(hosted or target_url(template, claims, email_id), status_code=303, headers=_HEADERS)

    def _refused(exc: LinkError, token: str, purpose: Purpose) -> Response:
        claims = expired_claims(token, keys, purpose=purpose) if exc.reason == "expired" else None
        if claims is None:
            log.info("%s link refused: %s", purpose, exc.reason)
            return HTMLResponse(pages.invalid_page(), status_code=400, headers=_HEADERS)
        log.info("%s link expired: account %s", purpose, claims.account, extra={"account": claims.account})
        choice = catalogs.choose(lookups.locale_of(engine, claims.account) or settings.i18n.default_locale)
        page = pages.expired_page(settings, choice, catalogs.translations(choice.locale))
        return HTMLResponse(page, status_code=410, headers=_HEADERS)

    return [Route("/settle/{token}", land("settlement"), methods=["GET"]),
            Route("/update/{token}", land("update"), methods=["GET"])]
