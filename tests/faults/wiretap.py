"""A relay on loopback in front of an SMTP server that keeps every byte each client session wrote, and a
reading of those bytes: which were commands and which message data, as the server takes them."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from tests.faults.loopback import Listener

__all__ = ["WireTap", "Wire", "read_wire"]

_END_OF_DATA = b"\r\n.\r\n"


@dataclass
class Wire:
    """One client session read as a server that opens every DATA reads it: its commands, its whole
    messages, and the message data it left open when it ended (None: none was left open)."""

    commands: list[bytes] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    left_open: bytes | None = None


def read_wire(sent: bytes) -> Wire:
    """Commands up to each DATA, then the message data to its final dot, and so on to the end."""
    wire, at = Wire(), 0
    while at < len(sent):
        end = sent.find(b"\r\n", at)
        if end < 0:
            wire.commands.append(sent[at:])
            break
        command = sent[at:end]
        wire.commands.append(command)
        at = end + 2
        if command.upper() == b"DATA":
            stop = sent.find(_END_OF_DATA, at - 2)
            if stop < 0:
                wire.left_open = sent[at:]
                break
            wire.messages.append(sent[at:stop + 2])
            at = stop + len(_END_OF_DATA)
    return wire


class WireTap(Listener):
    """Listens on 127.0.0.1 (a port of its own) and relays each connection to the server at `port`."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = 0
        self.sessions: list[bytearray] = []  # what each client wrote, in the order they connected
        self._lock = threading.Lock()

    def wires(self) -> list[Wire]:
        """Each session so far, read."""
        with self._lock:
            return [read_wire(bytes(sent)) for sent in self.sessions]

    async def _session(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        sent = bytearray()
        with self._lock:
            self.sessions.append(sent)
        try:
            server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target)
            await asyncio.gather(self._pipe(client_in, server_out, sent), self._pipe(server_in, client_out),
                                 return_exceptions=True)
        except asyncio.CancelledError:  # the tap stops: the relay ends as any other would
            client_out.close()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                    kept: bytearray | None = None) -> None:
        """Copy until the source ends, then end the sink (a close on one side is a close on the other)."""
        try:
            while data := await source.read(65536):
                if kept is not None:
                    with self._lock:
                        kept += data
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()
