"""`dunning serve`: the web server of the emails' links and Stripe's webhooks (loopback unless told otherwise)."""

from __future__ import annotations

import argparse

from dunning.commands._arguments import port
from dunning.errors import ExitCode
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "serve"
HELP = ("serve the settlement and update links' landing and Stripe's webhooks "
        "(127.0.0.1:8000 unless serve.host and serve.port say else; a TLS reverse proxy in front)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="the address to listen on (default: serve.host, 127.0.0.1)")
    parser.add_argument("--port", type=port, help="the port to listen on (default: serve.port, 8000)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from dunning.serve.app import build_app

    settings = load_settings(args.settings)
    host = args.host or settings.serve.host
    listen_port = args.port if args.port is not None else settings.serve.port
    # Access lines would carry the tokens: the routes log what happened, by ids.
    uvicorn.run(build_app(settings), host=host, port=listen_port, access_log=False, log_level="info",
                server_header=False)
    return ExitCode.OK
