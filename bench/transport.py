"""The SMTP transport alone, two source trees in turn: CPU per message of `SmtpTransport.send`, nothing else.

Each run is a child process of one tree (its `dunning` package first on the path) that sends the same
prepared message through `SmtpTransport` to the local sink, eight sends at a time over four connections
on uvloop, as a delivery process does, and prints the CPU microseconds it spent per message: the pool,
pipelining, reply parsing, the event loop and the system calls, without rendering, MIME or the ledger.

    python -m bench.transport --trees BEFORE AFTER [--messages 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

LINE = b"x" * 74 + b"\r\n"
MESSAGE = b"From: billing@example.com\r\nTo: customer@example.com\r\nSubject: bench\r\n\r\n" + LINE * 280


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="two source trees of the project (each holding its dunning/ package)")
    parser.add_argument("--messages", type=int, default=20_000, help="messages per run (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each tree, alternating (default 5)")
    parser.add_argument("--sink", choices=["auto", "postfix", "python"], default="auto")
    parser.add_argument("--child", nargs=2, metavar=("HOST", "PORT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the sink, run both trees in turn, print the medians."""
    args = parse_args(argv)
    if args.child:
        print(f"{_send_all(args.child[0], int(args.child[1]), args.messages):.2f}")
        return 0
    if not args.trees:
        raise SystemExit("--trees BEFORE AFTER is needed")
    from bench.sink import start_sink
    from bench.trees import alternating, print_medians, run_child  # the parent's: a child has another tree's path

    trees = [tree.resolve() for tree in args.trees]
    figures: dict[Path, list[float]] = {tree: [] for tree in trees}
    workdir = Path(tempfile.mkdtemp(prefix="dunning-transport-"))
    try:
        with start_sink(workdir, prefer=args.sink) as sink:
            for tree in alternating(trees, args.rounds):
                child = ["--child", sink.host, str(sink.port), "--messages", str(args.messages)]
                figures[tree].append(float(run_child(tree, __file__, child, "transport")[-1]))
                print(f"transport: {tree.name}: {figures[tree][-1]:.1f} µs per message", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_medians(trees, "CPU µs per message", {"`SmtpTransport.send`": figures})
    return 0


def _send_all(host: str, port: int, messages: int) -> float:
    """Send `messages` copies of MESSAGE with this interpreter's dunning; CPU µs per message."""
    import gc

    import uvloop

    from dunning.delivery import mime
    from dunning.delivery.transport import SmtpTransport
    from dunning.settings import SmtpSettings

    smtp = SmtpSettings(host=host, port=port, concurrency=4, ehlo_name="bench.local")
    # The class build_message gives an ASCII message that needs no dot-stuffing (a tree before it: DotSafeBytes).
    message = getattr(mime, "AsciiDotSafeBytes", mime.DotSafeBytes)(MESSAGE)

    async def sends() -> int:
        async with SmtpTransport(smtp) as transport:
            todo, sent = iter(range(messages)), 0

            async def lane() -> None:
                nonlocal sent
                for _ in todo:
                    outcome = await transport.send("billing@example.com", ["customer@example.com"], message)
                    sent += outcome.status == "sent"

            await asyncio.gather(*(lane() for _ in range(2 * smtp.concurrency)))
            return sent

    gc.set_threshold(20_000)  # as a run sets it (dunning.run.collector)
    started = time.process_time()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sent = runner.run(sends())
    spent = time.process_time() - started
    if sent != messages:
        raise SystemExit(f"{sent} of {messages} messages sent")
    return spent / messages * 1e6


if __name__ == "__main__":
    raise SystemExit(main())
