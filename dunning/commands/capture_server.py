"""`dunning capture-server`: a local SMTP server that writes every message it receives as a .eml file."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from dunning.commands._arguments import port
from dunning.delivery.capture import CapturedMessage, CaptureServer
from dunning.errors import DunningError, ExitCode
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "capture-server"
HELP = "run a loopback SMTP server that saves every message it receives as a .eml file"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=port, default=8025, help="port (0 picks a free one)")
    parser.add_argument("--outbox", type=Path, metavar="DIR",
                        help="where .eml files go (default: delivery.outbox_dir, var/outbox)")


def run(args: argparse.Namespace) -> int:
    outbox = args.outbox or Path(load_settings(args.settings).delivery.outbox_dir)
    received = 0

    def report(message: CapturedMessage) -> None:
        nonlocal received
        received += 1
        name = message.path.name if message.path else "-"
        print(f"received {name} for {len(message.recipients)} recipient(s)", flush=True)

    try:
        server = CaptureServer(outbox, host=args.host, port=args.port, keep=False, on_message=report)
        server.start()
    except (OSError, ValueError) as exc:
        raise DunningError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    print(f"listening on smtp://{args.host}:{server.port}, writing .eml files to {outbox} "
          "(Ctrl+C to stop)", flush=True)
    try:
        _wait_for_signal()
    finally:
        server.stop()
    print(f"stopped after {received} message(s)", flush=True)
    return ExitCode.OK


def _wait_for_signal() -> None:
    """Block until Ctrl+C or SIGTERM; both are a normal way to stop this server."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
