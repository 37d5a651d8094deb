"""`dunning studio`: a local web app showing every email live as its templates and catalogs are saved."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dunning.errors import ExitCode
from dunning.settings import load_settings, settings_path

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "studio"
HELP = "serve a live preview of every email, locale and scenario, with lint, translation status and test sends"

log = logging.getLogger("dunning.studio")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8040, help="port (default: 8040; 0 picks a free one)")
    parser.add_argument("--capture", action="store_true",
                        help="send tests to a capture server started alongside (writes .eml files to "
                             "delivery.outbox_dir) instead of the [smtp] server")


def run(args: argparse.Namespace) -> int:
    from dunning.delivery.capture import CaptureServer  # only this command needs the web stack
    from dunning.delivery.transport import is_loopback
    from dunning.emails.studio.server import StudioServer

    settings = load_settings(args.settings)
    capture = None
    if args.capture:
        capture = CaptureServer(Path(settings.delivery.outbox_dir), keep=False).start()
        smtp = settings.smtp.model_copy(update=dict(host=capture.host, port=capture.port, tls="none",
                                                    username=None, password=None))
        settings = settings.model_copy(update=dict(smtp=smtp))
        print(f"test emails go to the capture server on smtp://{capture.host}:{capture.port}, "
              f"saved in {settings.delivery.outbox_dir}", flush=True)
    if not is_loopback(args.host):
        log.warning("listening on %s: anyone who can reach it can read the templates and send tests to "
                    "studio.test_recipients", args.host)
    try:
        server = StudioServer(settings, host=args.host, port=args.port,
                              settings_file=args.settings or settings_path())
        print(f"dunning studio on {server.url} (Ctrl+C to stop)", flush=True)
        server.run()
    finally:
        if capture is not None:
            capture.stop()
    return ExitCode.OK
