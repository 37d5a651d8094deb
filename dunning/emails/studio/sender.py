"""Send a test: one email of the studio through the configured SMTP settings, to an allowed address only."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

from dunning.delivery.mime import address_domain, build_message, make_message_id
from dunning.delivery.transport import Outcome, SmtpTransport
from dunning.emails.render import RenderedEmail
from dunning.emails.studio.recipients import check_recipient
from dunning.settings import Settings

__all__ = ["TEST_MARK", "send_test"]

TEST_MARK = "[TEST] "   # before the subject of every test send: never mistaken for a real notice


async def send_test(email: RenderedEmail, to: str, settings: Settings, allowed: Sequence[str] | None = None) -> Outcome:
    """Build the email for `to` (checked against the allowed recipients first), `[TEST]` before its subject, and
    send it over SMTP; allowed defaults to studio.test_recipients."""
    address = check_recipient(to, settings.studio.test_recipients if allowed is None else allowed)
    email = dataclasses.replace(email, subject=TEST_MARK + email.subject)
    sender = settings.sender
    message_id = make_message_id(f"studio:{uuid.uuid4().hex}", address_domain(sender.from_address))
    build = partial(build_message, email, from_address=sender.from_address, from_name=sender.from_name,
                    reply_to=sender.reply_to, to=[address], cc=[], message_id=message_id,
                    date=datetime.now(UTC).replace(microsecond=0))
    async with SmtpTransport(settings.smtp) as transport:
        return await transport.send(sender.from_address, [address], build(eight_bit=transport.eight_bit),
                                    seven_bit=partial(build, eight_bit=False))
