"""A minimal SMTP sink: accepts every message, keeps none, counts them.

The fallback when Postfix's smtp-sink is not installed. It speaks just enough ESMTP for
aiosmtplib, smtplib and smtp-source (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and prints
`mesg=N` (as smtp-sink -c does) whenever the count has changed, at most every 50 ms.

    python -m bench.sink_server --port 2525
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

EHLO_REPLY = (b"250-bench-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n"
              b"250 ENHANCEDSTATUSCODES\r\n")
REPLIES = {b"HELO": b"250 bench-sink\r\n", b"MAIL": b"250 2.1.0 Ok\r\n", b"RCPT": b"250 2.1.5 Ok\r\n",
           b"RSET": b"250 2.0.0 Ok\r\n", b"NOOP": b"250 2.0.0 Ok\r\n"}
END_OF_DATA = b"\r\n.\r\n"
STREAM_LIMIT = 64 * 1024 * 1024


class Counter:
    """Messages accepted so far."""

    def __init__(self) -> None:
        self.messages = 0


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: Counter) -> None:
    """One SMTP session: every command accepted, every message counted and dropped."""
    writer.write(b"220 bench-sink ESMTP\r\n")
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                await skip_data(reader)
                counter.messages += 1
                writer.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"EHLO":
                writer.write(EHLO_REPLY)
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                break
            else:
                writer.write(REPLIES.get(verb, b"502 5.5.2 Error: command not recognized\r\n"))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def skip_data(reader: asyncio.StreamReader) -> None:
    """Read up to and including the lone dot that ends DATA."""
    chunk = await reader.readuntil(b".\r\n")
    if chunk == b".\r\n":  # an empty message
        return
    tail = chunk[-len(END_OF_DATA):]
    while not tail.endswith(END_OF_DATA):
        chunk = await reader.readuntil(b".\r\n")
        tail = (tail + chunk)[-len(END_OF_DATA):]


async def report(counter: Counter) -> None:
    """Print the count whenever it changed, like smtp-sink -c."""
    shown = -1
    while True:
        if counter.messages != shown:
            shown = counter.messages
            sys.stdout.write(f"mesg={shown}\r\n")
            sys.stdout.flush()
        await asyncio.sleep(0.05)


async def serve(host: str, port: int) -> None:
    """Accept sessions until killed."""
    counter = Counter()
    server = await asyncio.start_server(lambda r, w: session(r, w, counter), host, port,
                                        limit=STREAM_LIMIT, backlog=1024)
    async with server:
        await asyncio.gather(server.serve_forever(), report(counter))


def main(argv: list[str] | None = None) -> int:
    """Run the sink on host:port until terminated."""
    parser = argparse.ArgumentParser(prog="python -m bench.sink_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
