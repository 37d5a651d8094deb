"""On a pipelined connection the next send asks for its record only once the send before has returned its
outcome: whoever records outcomes has that one before the next message's data goes out."""

from __future__ import annotations

import asyncio

from dunning.delivery.capture import CaptureServer
from dunning.delivery.transport import SmtpTransport
from dunning.settings import SmtpSettings

MESSAGES = [f"From: a@example.com\r\nTo: b@example.com\r\nMessage-ID: <{n}@example.com>\r\n\r\nHello {n}\r\n".encode()
            for n in range(1, 4)]


def test_the_next_send_on_a_pipelined_connection_asks_for_its_record_after_the_outcome_before():
    """Three sends chained on one pipelined connection: each one's record is asked for after the send before
    it returned, and each record is awaited before its data goes out."""
    events: list[str] = []

    async def main() -> None:
        with CaptureServer() as server:
            settings = SmtpSettings(host="127.0.0.1", port=server.port, command_timeout=2.0, data_timeout=2.0,
                                    concurrency=1, ehlo_name="client.example.com")
            async with SmtpTransport(settings) as transport:
                await asyncio.gather(*(send(transport, n, message) for n, message in enumerate(MESSAGES, 1)))
            assert len(server.messages) == len(MESSAGES)

    async def send(transport: SmtpTransport, n: int, message: bytes) -> None:
        async def recorded() -> None:
            events.append(f"recorded {n}")

        def before_data() -> asyncio.Future[None]:
            events.append(f"asked {n}")
            return asyncio.ensure_future(recorded())

        outcome = await transport.send("a@example.com", ["b@example.com"], message, before_data=before_data)
        events.append(f"{outcome.status} {n}")

    asyncio.run(main())
    assert events == ["asked 1", "recorded 1", "sent 1", "asked 2", "recorded 2", "sent 2", "asked 3", "recorded 3",
                      "sent 3"]
