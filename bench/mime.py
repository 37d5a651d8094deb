"""MIME alone, two source trees in turn: CPU per message of `build_message` over rendered emails.

Each run is a child process of one tree (its `dunning` package first on the path) that renders every
shipped scenario in every shipped locale with amounts of their own (as bench/render_bench.py does), then
builds each email's message bytes a few times over, as a run builds them for a server taking 8-bit data,
and prints the CPU microseconds per message of the fastest pass and of the median one.

    python -m bench.mime --trees BEFORE AFTER [--emails 3000] [--passes 5] [--rounds 5] [--seven-bit]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mime", description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="two source trees of the project (each holding its dunning/ package)")
    parser.add_argument("--emails", type=int, default=3000, help="emails rendered, then built (default 3,000)")
    parser.add_argument("--passes", type=int, default=5, help="passes over them in each run (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each tree, alternating (default 5)")
    parser.add_argument("--seven-bit", action="store_true", help="build for a server without 8BITMIME")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run both trees in turn, print the medians."""
    args = parse_args(argv)
    if args.child:
        print("{:.2f} {:.2f}".format(*_build_all(args.emails, args.passes, not args.seven_bit)))
        return 0
    if not args.trees:
        raise SystemExit("--trees BEFORE AFTER is needed")
    from bench.trees import alternating, print_medians, run_child  # the parent's: a child has another tree's path

    trees = [tree.resolve() for tree in args.trees]
    fast_runs: dict[Path, list[float]] = {tree: [] for tree in trees}
    median_runs: dict[Path, list[float]] = {tree: [] for tree in trees}
    child = ["--child", "--emails", str(args.emails), "--passes", str(args.passes)]
    for tree in alternating(trees, args.rounds):
        best, middle = run_child(tree, __file__, child + (["--seven-bit"] if args.seven_bit else []), "MIME")
        fast_runs[tree].append(float(best))
        median_runs[tree].append(float(middle))
        print(f"mime: {tree.name}: {best} best, {middle} median µs per message", file=sys.stderr)
    print_medians(trees, "CPU µs per message", {"`build_message`, fastest pass": fast_runs,
                                                "`build_message`, median pass": median_runs})
    return 0


def _build_all(emails: int, passes: int, eight_bit: bool) -> tuple[float, float]:
    """Render `emails` emails with this interpreter's dunning, then build them `passes` times over."""
    import gc
    import random

    from bench.render_bench import LOCALES, TEMPLATES, _varied
    from dunning.delivery.mime import build_message, make_message_id
    from dunning.emails.render import Renderer
    from dunning.emails.scenarios import load_scenarios

    renderer = Renderer(TEMPLATES, LOCALES)
    jobs = [(s.notice, locale, s.context) for s in load_scenarios(TEMPLATES)
            for locale in sorted(renderer.available_locales)]
    rendered = [renderer.render(notice, locale, context)
                for notice, locale, context in _varied(jobs, emails, random.Random(7))]
    ids = [make_message_id(f"bench:{n}", "example.com") for n in range(len(rendered))]
    date = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    gc.set_threshold(20_000)  # as a run sets it (dunning.run.collector)
    spent = []
    for _ in range(passes):
        started = time.process_time()
        for email, message_id in zip(rendered, ids, strict=True):
            build_message(email, from_address="billing@example.com", from_name="Example Billing",
                          reply_to="support@example.com", to=["customer@example.com"], cc=[],
                          message_id=message_id, date=date, eight_bit=eight_bit)
        spent.append((time.process_time() - started) / len(rendered) * 1e6)
    return min(spent), statistics.median(spent)


if __name__ == "__main__":
    raise SystemExit(main())
