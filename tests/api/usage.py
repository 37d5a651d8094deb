"""How code that embeds dunning uses its public API; type-checked by tests/api/test_api.py."""

from __future__ import annotations

from datetime import UTC, datetime

from dunning import api
from dunning.errors import LinkError


def billing_job(settings_file: str, as_of: datetime) -> int:
    """Show the plan, run it, and report what was sent."""
    settings: api.Settings = api.load_settings(settings_file)
    due: list[api.PlannedNotice] = [n for n in api.plan(settings, as_of=as_of) if n.status == "send"]
    summary: api.RunSummary = api.run(settings, as_of=as_of)
    return len(due) + summary.sent


def preview(settings: api.Settings, context: dict[str, object]) -> str:
    """The subject of a past_due email in French."""
    email: api.RenderedEmail = api.render_notice(settings, "past_due", "fr-FR", context)
    return email.subject


def settle_page(settings: api.Settings, url: str) -> str | None:
    """The account a settlement link is for, or None when it is not valid."""
    try:
        claims: api.LinkClaims = api.verify_link(url, settings, now=datetime.now(UTC))
    except LinkError:
        return None
    return claims.account
