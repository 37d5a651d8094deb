"""`dunning serve`: the web server that answers the emails' links (loopback unless told otherwise)."""

from __future__ import annotations

import argparse

from dunning.errors import ExitCode
from dunning.settings import load_settings

__all__ = ["NAME", "HELP", "configure", "run"]

NAME = "serve"
HELP = "serve the settlement and update links' landing (127.0.0.1:8000 unless serve.host and serve.port say else)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="the address to listen on (default: serve.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="the port to listen on (default: serve.port, 8000)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from dunning.serve.app import build_app

    settings = load_settings(args.settings)
    host, port = args.host or settings.serve.host, args.port if args.port is not None else settings.serve.port
    # Access lines would carry the tokens: the routes log what happened, by ids.
    uvicorn.run(build_app(settings), host=host, port=port, access_log=False, log_level="info")
    return ExitCode.OK
