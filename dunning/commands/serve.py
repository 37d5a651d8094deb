"""dunning serve: the web server (Stripe webhooks), on loopback unless told otherwise."""

from __future__ import annotations

import argparse

import uvicorn

from dunning.commands._arguments import port
from dunning.serve.app import build_app
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "serve"
HELP = "serve Stripe's webhooks over HTTP (loopback by default: put a TLS reverse proxy in front)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8080, help="port to listen on (default: 8080)")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    app = build_app(settings)
    # The proxy in front terminates TLS; its X-Forwarded-* headers are trusted from loopback only (uvicorn's default).
    uvicorn.run(app, host=args.host, port=args.port, log_level="debug" if args.verbose else "info",
                server_header=False)
    return 0
