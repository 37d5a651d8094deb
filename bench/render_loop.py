"""The render alone, two or more source trees of the project in one process, in turn; or one tree for a counter.

    python -m bench.render_loop --trees BEFORE AFTER [--emails 3000] [--rounds 10]
    valgrind --tool=callgrind python -m bench.render_loop --once TREE --rounds 0   (then --rounds 1)

With --trees: each tree's Renderer over the same payloads (every shipped scenario in every locale, each
with amounts of its own, as `bench/render_bench.py --fresh amounts` makes them), the trees taking turns,
after a check that every tree renders every payload to the same subject, preheader, HTML and text; prints
the median and best CPU microseconds per email of each. In turn in one process, a shared host's swings
fall on every tree alike.

With --once: one tree renders the payloads `--rounds` times and prints nothing, for a counter run around
it: the difference between `--rounds 1` and `--rounds 0` (start-up and compiles alike) is the loop's.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

Job = tuple[str, str, dict[str, Any]]


def main(argv: list[str] | None = None) -> int:
    """Measure the trees in turn, or run one tree's loop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs="+", type=Path, help="source trees to compare, in turn")
    parser.add_argument("--once", type=Path, help="one tree's loop, for a counter run around it")
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    if args.once is not None:
        renderer, work = _load(args.once, args.emails)
        for _ in range(args.rounds):
            _loop(renderer, work)
        return 0
    loaded = [_load(tree, args.emails) for tree in args.trees]
    work = loaded[0][1]
    for notice, locale, context in work:
        first, *others = [renderer.render(notice, locale, context) for renderer, _ in loaded]
        for other in others:
            same = (first.subject, first.preheader, first.html, first.text) == (
                other.subject, other.preheader, other.html, other.text)
            if not same:
                raise SystemExit(f"{notice} in {locale} renders differently in the trees: nothing measured")
    runs: list[list[float]] = [[] for _ in loaded]
    gc.disable()
    for _ in range(args.rounds):
        for index, (renderer, _) in enumerate(loaded):
            runs[index].append(_loop(renderer, work))
            gc.collect()
    for tree, values in zip(args.trees, runs, strict=True):
        print(f"{tree}: {statistics.median(values):.1f} µs per email (median), {min(values):.1f} (best); "
              + " · ".join(f"{value:.0f}" for value in values))
    return 0


def _load(tree: Path, emails: int) -> tuple[Any, list[Job]]:
    """A tree's Renderer, warmed on every scenario in every locale, and the payloads, made from its modules."""
    for name in [name for name in sys.modules if name.split(".")[0] in ("dunning", "bench")]:
        del sys.modules[name]   # the next tree's modules are its own
    sys.path.insert(0, str(tree))
    try:
        from bench.render_bench import _varied
        from dunning.emails.render import Renderer
        from dunning.emails.scenarios import load_scenarios
        templates = tree / "templates" / "emails"
        renderer = Renderer(templates, tree / "locales")
        jobs = [(s.notice, locale, s.context) for s in load_scenarios(templates)
                for locale in sorted(renderer.available_locales)]
        _loop(renderer, jobs)
        return renderer, _varied(jobs, emails, random.Random(7))
    finally:
        sys.path.remove(str(tree))


def _loop(renderer: Any, work: list[Job]) -> float:
    """CPU microseconds per email of rendering the payloads once."""
    started = time.process_time()
    for notice, locale, context in work:
        renderer.render(notice, locale, context)
    return (time.process_time() - started) / len(work) * 1e6


if __name__ == "__main__":
    raise SystemExit(main())
