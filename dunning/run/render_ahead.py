"""A batch's emails rendered and built a few dozen at a time, ahead of the sends that take them.

Rendered one at a time between the steps of seven other sends, the event loop and the SMTP server, an
email finds the processor's caches cold for the templates' code; rendered in a row, the emails of a
chunk share them, and each message's bytes are built while its rendered parts are still in the caches
(bench/README.md has the figures). A chunk is small, so a batch is never held rendered in memory as a
whole. A message is built for what the transport last heard the server take (8-bit data or not), and a
send rebuilds it in 7-bit encodings should its connection not take 8-bit data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from dunning import ledger
from dunning.delivery.mime import build_message
from dunning.emails.limits import SlowNotices
from dunning.emails.render import RenderedEmail
from dunning.errors import MessageError, TemplateError
from dunning.planning import notice_context
from dunning.run.context import RunContext
from dunning.run.stages import Stages

if TYPE_CHECKING:
    from dunning.delivery.dkim import DkimSigner

__all__ = ["CHUNK", "Rendered", "Prepared", "Builder", "template_order", "prepared_ahead", "prepare",
           "message_builder"]

CHUNK = 32  # emails rendered in a row

Rendered = RenderedEmail | TemplateError   # the email, or why it did not render
Builder = Callable[..., bytes]   # the message's bytes, called with eight_bit


class Prepared(NamedTuple):
    """One claimed email made ready for its send: rendered, addressed, and its bytes built when it could be."""

    email: Rendered
    to: list[str]
    cc: list[str]
    build: Builder | None = None   # builds the message again (7-bit, for a server without 8BITMIME)
    data: bytes | MessageError | None = None   # the bytes built ahead, or why the message cannot be built


def template_order(claim: ledger.Claim) -> tuple[str, str]:
    """The order a claimed batch is sent in: grouped by notice and locale, so that a chunk renders and builds
    emails of one template in a row, its code and constants warm in the caches (bench/README.md)."""
    return claim.notice, claim.locale


def prepared_ahead(run: RunContext, claims: list[ledger.Claim], eight_bit: Callable[[], bool]
                   ) -> Iterator[tuple[int, ledger.Claim, Prepared]]:
    """(position, claim, the email made ready) for each claim in order, prepared CHUNK at a time when the
    previous chunk is taken; several sends may share the iterator (it never awaits). eight_bit: whether
    the server takes 8-bit data, asked as each chunk is built."""
    stages, chunk = run.stages, CHUNK
    slow = SlowNotices(run.renderer)  # a notice out of time fails the batch's other emails of it at once
    for start in range(0, len(claims), chunk):
        part = claims[start:start + chunk]
        stages.lap("smtp")
        rendered = [_render(slow, claim) for claim in part]
        stages.lap("render")
        takes_8bit = eight_bit()
        ready = [_built(run, claim, email, takes_8bit) for claim, email in zip(part, rendered, strict=True)]
        yield from zip(range(start, start + len(part)), part, ready, strict=True)


def prepare(run: RunContext, claim: ledger.Claim, eight_bit: bool) -> Prepared:
    """One claimed email rendered and built now (what prepared_ahead does for a chunk)."""
    return _built(run, claim, _render(SlowNotices(run.renderer), claim), eight_bit)


def message_builder(run: RunContext, claim: ledger.Claim, email: RenderedEmail, to: list[str],
                    cc: list[str]) -> Builder:
    """The message's bytes as they go out (DKIM-signed when on), built when called with eight_bit."""
    sender = run.settings.sender
    return partial(_final_bytes, run.dkim, run.stages, partial(
        build_message, email, from_address=sender.from_address, from_name=sender.from_name,
        reply_to=sender.reply_to, to=to, cc=cc, message_id=claim.message_id, date=run.clock.now()))


def _render(renderer: SlowNotices, claim: ledger.Claim) -> Prepared:
    payload = claim.payload
    to, cc = payload["to"], payload["cc"]
    try:
        email = renderer.render(claim.notice, payload["locale"], notice_context.revive(payload["context"]))
    except TemplateError as exc:
        return Prepared(exc, to, cc)
    return Prepared(email, to, cc)


def _built(run: RunContext, claim: ledger.Claim, ready: Prepared, eight_bit: bool) -> Prepared:
    """The email with its bytes, unless it did not render or its parts already pass the largest message
    (the send stops the run for that)."""
    email = ready.email
    if isinstance(email, TemplateError) or len(email.html) + len(email.text) > run.settings.delivery.max_message_bytes:
        return ready
    build = message_builder(run, claim, email, ready.to, ready.cc)
    try:
        return ready._replace(build=build, data=build(eight_bit=eight_bit))
    except MessageError as exc:
        return ready._replace(build=build, data=exc)


def _final_bytes(signer: DkimSigner | None, stages: Stages, build: Callable[..., bytes], *, eight_bit: bool) -> bytes:
    """The message as it goes out: built, then signed over exactly these bytes when DKIM is on."""
    stages.lap("smtp")
    data = build(eight_bit=eight_bit)
    stages.lap("mime")
    if signer is None:
        return data
    data = signer.sign(data)
    stages.lap("sign")
    return data
