"""The render alone, two or more source trees of the project in one process, in turn; or one tree for a counter.

    python -m bench.render_loop --trees BEFORE AFTER [--emails 3000] [--rounds 10] [--sample-locales] [--fresh]
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
    parser.add_argument("--sample-locales", action="store_true",
                        help="the locale tags of the sample's accounts (fr-FR, ar-EG, pt-BR…), as a run meets them")
    parser.add_argument("--fresh", action="store_true",
                        help="payloads of their own in every round: amounts never formatted before, as in a run "
                             "(with --once: the first round's only)")
    args = parser.parse_args(argv)
    if args.once is not None:   # with --fresh: the warm set and one fresh set, whatever the rounds
        renderer, work = _load(args.once, args.emails * (2 if args.fresh else 1), args.sample_locales)
        for _ in range(args.rounds):
            _loop(renderer, work[-args.emails:])
        return 0
    sets = 1 + args.rounds if args.fresh else 1
    loaded = [_load(tree, args.emails * sets, args.sample_locales) for tree in args.trees]
    work, size = loaded[0][1], args.emails
    rounds = [work[size * (r + 1):size * (r + 2)] if args.fresh else work[:size] for r in range(args.rounds)]
    for notice, locale, context in work[:size]:
        first, *others = [renderer.render(notice, locale, context) for renderer, _ in loaded]
        for other in others:
            same = (first.subject, first.preheader, first.html, first.text) == (
                other.subject, other.preheader, other.html, other.text)
            if not same:
                raise SystemExit(f"{notice} in {locale} renders differently in the trees: nothing measured")
    runs: list[list[float]] = [[] for _ in loaded]
    gc.disable()
    for payloads in rounds:
        for index, (renderer, _) in enumerate(loaded):
            runs[index].append(_loop(renderer, payloads))
            gc.collect()
    for tree, values in zip(args.trees, runs, strict=True):
        print(f"{tree}: {statistics.median(values):.1f} µs per email (median), {min(values):.1f} (best); "
              + " · ".join(f"{value:.0f}" for value in values))
    return 0


def _load(tree: Path, emails: int, sample_locales: bool = False) -> tuple[Any, list[Job]]:
    """A tree's Renderer, warmed on every scenario in every locale, and the payloads, made from its modules.

    sample_locales: the locale tags of the sample's accounts instead of the catalogs' own (a region's
    formats: ar-EG's Arabic-Indic digits, fr-CA's; a tag without a catalog, falling back)."""
    for name in [name for name in sys.modules if name.split(".")[0] in ("dunning", "bench")]:
        del sys.modules[name]   # the next tree's modules are its own
    sys.path.insert(0, str(tree))
    try:
        from bench.render_bench import _varied
        from dunning.billing.sample import PROFILES
        from dunning.emails.render import Renderer
        from dunning.emails.scenarios import load_scenarios
        templates = tree / "templates" / "emails"
        renderer = Renderer(templates, tree / "locales")
        tags = sorted({profile[0] for profile in PROFILES}) if sample_locales else sorted(renderer.available_locales)
        jobs = [(s.notice, locale, s.context) for s in load_scenarios(templates) for locale in tags]
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
