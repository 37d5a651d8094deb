"""Send a test: one email of the studio through the configured SMTP settings, to an allowed address only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial

from dunning.delivery.mime import address_domain, build_message, make_message_id
from dunning.delivery.transport import Outcome, SmtpTransport
from dunning.emails.render import RenderedEmail
from dunning.emails.studio.recipients import check_recipient
from dunning.settings import Settings

__all__ = ["send_test"]


async def send_test(email: RenderedEmail, to: str, settings: Settings) -> Outcome:
    """Build the email for `to` (checked against studio.test_recipients first) and send it over SMTP."""
    address = check_recipient(to, settings.studio.test_recipients)
    sender = settings.sender
    message_id = make_message_id(f"studio:{uuid.uuid4().hex}", address_domain(sender.from_address))
    build = partial(build_message, email, from_address=sender.from_address, from_name=sender.from_name,
                    reply_to=sender.reply_to, to=[address], cc=[], message_id=message_id,
                    date=datetime.now(UTC).replace(microsecond=0))
    async with SmtpTransport(settings.smtp) as transport:
        return await transport.send(sender.from_address, [address], build(eight_bit=transport.eight_bit),
                                    seven_bit=partial(build, eight_bit=False))
