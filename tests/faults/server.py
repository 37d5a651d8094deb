"""A scripted, misbehaving SMTP server on loopback: any reply at any stage, none, late, extra, garbage, or a close.

It speaks just enough SMTP (EHLO with PIPELINING and 8BITMIME, MAIL, RCPT, DATA, RSET, NOOP, QUIT) to
take what dunning sends, and keeps an exact account of every message whose data it read: who it was
for, and whether it answered the final dot with a 2xx (accepted) or left the client in doubt (no
reply, a late one, garbage, a close: the message may have been kept).
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field
from typing import Literal

from tests.faults.loopback import Listener

Stage = Literal["greeting", "mail", "rcpt", "data", "dot"]
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S[^\r\n]*)", re.IGNORECASE | re.MULTILINE)
NORMAL = {"greeting": b"220 faults.test ESMTP\r\n", "mail": b"250 2.1.0 Sender ok\r\n",
          "rcpt": b"250 2.1.5 Recipient ok\r\n", "data": b"354 End data with <CR><LF>.<CR><LF>\r\n",
          "dot": b"250 2.0.0 Queued\r\n"}


@dataclass
class Act:
    """At the `after`+1st command of `stage` (of `recipient`, for rcpt): wait `delay`, send `reply` in place
    of the usual one (None: say nothing at all), then close the connection if `close`; `times` in a row.
    `held`: the reply is not sent while the session lasts, so that it can only come too late (the server
    sets `holding` meanwhile, for the test to move the client's clock past its timeout)."""

    stage: Stage
    reply: bytes | None = b""
    close: bool = False
    delay: float = 0.0
    after: int = 0
    times: int = 1
    recipient: str | None = None
    held: bool = False
    seen: int = 0

    def matches(self, stage: str, recipient: str | None) -> bool:
        """Whether this act answers this command (counting the commands it skips)."""
        if stage != self.stage or (self.recipient is not None and recipient != self.recipient):
            return False
        self.seen += 1
        return self.after < self.seen <= self.after + self.times


@dataclass(frozen=True)
class Kept:
    """A message whose data the server read: its Message-ID, its accepted recipients, and its final reply."""

    message_id: str
    recipients: tuple[str, ...]
    reply: bytes | None  # what the dot got: None if nothing (a close, silence)

    @property
    def accepted(self) -> bool:
        """Whether the server said it accepted the message (a 2xx to the final dot, and nothing else)."""
        return self.reply is not None and self.reply[:1] == b"2"

    @property
    def in_doubt(self) -> bool:
        """Whether the client cannot know: no reply, or one that is neither a clean 2xx, 4xx nor 5xx."""
        return not self.accepted and not (self.reply is not None and self.reply[:1] in (b"4", b"5"))


@dataclass
class FaultServer(Listener):
    """The server, running on its own event loop in a thread; `script` is consumed as commands come."""

    script: list[Act] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    port: int = 0
    holding: threading.Event = field(default_factory=threading.Event)

    def delivered_to(self, message_id: str, recipient: str) -> int:
        """How many copies the server accepted (2xx to the dot) for this recipient."""
        return sum(1 for k in self.kept if k.message_id == message_id and recipient in k.recipients and k.accepted)

    def copies(self) -> dict[tuple[str, str], int]:
        """Per (Message-ID, recipient): copies the server may have passed on (accepted, or left in doubt)."""
        counts: dict[tuple[str, str], int] = {}
        for k in self.kept:
            if k.accepted or k.in_doubt:
                for recipient in k.recipients:
                    counts[(k.message_id, recipient)] = counts.get((k.message_id, recipient), 0) + 1
        return counts

    def _decide(self, stage: Stage, recipient: str | None = None,
                normal: bytes | None = None) -> tuple[Act | None, bytes | None]:
        """The scripted act for this command, if any, and the reply the server gives (None: none)."""
        act = next((a for a in self.script if a.matches(stage, recipient)), None)
        usual = normal if normal is not None else NORMAL[stage]
        if act is None or act.reply == b"":  # as usual (maybe late)
            return act, usual
        return act, act.reply

    async def _perform(self, writer: asyncio.StreamWriter, act: Act | None, reply: bytes | None) -> bool:
        """Send the decided reply (late, if scripted so); whether the session goes on."""
        if act is not None and act.delay:
            await asyncio.sleep(act.delay)
        if act is not None and act.held:
            self.holding.set()
            await asyncio.Event().wait()  # until the session is cancelled as the server stops
        if reply is not None:
            writer.write(reply)
        if act is not None and act.close:
            writer.close()
            return False
        return True

    async def _answer(self, writer: asyncio.StreamWriter, stage: Stage, recipient: str | None = None,
                      normal: bytes | None = None) -> tuple[bytes | None, bool]:
        """Reply to one command as scripted (or as usual); what was sent, and whether the session goes on."""
        act, reply = self._decide(stage, recipient, normal)
        return reply, await self._perform(writer, act, reply)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, going = await self._answer(writer, "greeting")
        recipients: list[str] = []
        in_mail = False
        while going:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-faults.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 50000000\r\n")
            elif verb == b"MAIL":
                reply, going = await self._answer(writer, "mail")
                in_mail, recipients = bool(reply and reply[:3] == b"250"), []
            elif verb == b"RCPT":
                address = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                if not in_mail:
                    writer.write(b"503 5.5.1 Need MAIL first\r\n")
                    continue
                reply, going = await self._answer(writer, "rcpt", address)
                if in_mail and reply and reply[:1] == b"2":
                    recipients.append(address)
            elif verb == b"DATA":
                opens = in_mail and bool(recipients)
                refusal = None if opens else b"554 5.5.1 No valid recipients\r\n"
                reply, going = await self._answer(writer, "data", normal=refusal)
                if going and opens and reply and reply[:3] == b"354":
                    going = await self._message(reader, writer, tuple(recipients))
                in_mail, recipients = False, []
            elif verb == b"RSET":
                writer.write(b"250 2.0.0 Reset\r\n")
                in_mail, recipients = False, []
            elif verb == b"NOOP":
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                return
            else:
                writer.write(b"500 5.5.2 Unknown command\r\n")
            await writer.drain()

    async def _message(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       recipients: tuple[str, ...]) -> bool:
        """Read the data to the final dot, answer it as scripted, and keep an account of it."""
        data = await reader.readuntil(b"\r\n.\r\n")
        found = _MESSAGE_ID.search(data)
        message_id = found.group(1).decode().strip() if found else ""
        act, reply = self._decide("dot")
        self.kept.append(Kept(message_id, recipients, reply))  # before any delay: the server has it now
        return await self._perform(writer, act, reply)
