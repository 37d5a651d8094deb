"""A batch's emails rendered a few dozen at a time, ahead of the sends that take them.

Rendered one at a time between the steps of seven other sends, the event loop and the SMTP server, an
email finds the processor's caches cold for the templates' code; rendered in a row, the emails of a
chunk share them (bench/README.md has the figures). A chunk is small, so a batch is never held
rendered in memory as a whole: the sends still build each message's bytes only as they take it.
"""

from __future__ import annotations

from collections.abc import Iterator

from dunning import ledger
from dunning.emails.limits import SlowNotices
from dunning.emails.render import RenderedEmail
from dunning.errors import TemplateError
from dunning.planning import notice_context
from dunning.run.context import RunContext

__all__ = ["CHUNK", "Rendered", "rendered_ahead"]

CHUNK = 32  # emails rendered in a row

Rendered = RenderedEmail | TemplateError   # the email, or why it did not render


def rendered_ahead(run: RunContext, claims: list[ledger.Claim]) -> Iterator[tuple[int, ledger.Claim, Rendered]]:
    """(position, claim, its email or why it did not render) for each claim in order, rendered CHUNK at a
    time when the previous chunk is taken; several sends may share the iterator (it never awaits)."""
    stages, chunk = run.stages, CHUNK
    slow = SlowNotices(run.renderer)  # a notice out of time fails the batch's other emails of it at once
    for start in range(0, len(claims), chunk):
        part = claims[start:start + chunk]
        stages.lap("smtp")
        emails = [_render(slow, claim) for claim in part]
        stages.lap("render")
        yield from zip(range(start, start + len(part)), part, emails, strict=True)


def _render(renderer: SlowNotices, claim: ledger.Claim) -> Rendered:
    payload = claim.payload
    try:
        return renderer.render(claim.notice, payload["locale"], notice_context.revive(payload["context"]))
    except TemplateError as exc:
        return exc
