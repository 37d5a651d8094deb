"""Runs localstripe (a stateful fake Stripe server; GPL, a test server only) on a loopback port.

`python localstripe_server.py PORT`: localstripe's own entry point listens on every interface and writes
its whole store to /tmp after each change; here it listens on 127.0.0.1 alone and keeps its store in memory.
"""

from __future__ import annotations

import sys

from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]

if __name__ == "__main__":
    web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
