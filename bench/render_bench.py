"""Render cost per email: every shipped scenario in every shipped locale, after warm-up.

    python bench/render_bench.py [--emails 6000] [--repeat 5] [--reload-interval 1.0]

Prints the best and median milliseconds per email over the repeats, in wall-clock time and in
CPU time of this process (the honest figure on a machine shared with other work). Compiles happen
in the warm-up, as in a run: the MJML once per notice, Jinja once per notice and locale.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dunning.render import Renderer  # noqa: E402
from dunning.scenarios import load_scenarios  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Measure and print ms/email."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=6000, help="emails per repeat")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reload-interval", type=float, default=1.0,
                        help="seconds between checks of template and .po files (0: every email)")
    args = parser.parse_args(argv)
    renderer = Renderer(REPO / "templates" / "emails", REPO / "locales", reload_interval=args.reload_interval)
    jobs = [(s.notice, locale, s.context) for s in load_scenarios(REPO / "templates" / "emails")
            for locale in sorted(renderer.available_locales)]
    started = time.perf_counter()
    for notice, locale, context in jobs:
        renderer.render(notice, locale, context)
    warm_up = time.perf_counter() - started
    runs = [_measure(renderer, jobs, args.emails) for _ in range(args.repeat)]
    print(f"{len(jobs)} notice × locale × scenario combinations; warm-up (all compiles) {warm_up:.2f} s; "
          f"{args.emails} emails × {args.repeat}, reload_interval={args.reload_interval}")
    for label, values in (("wall", [wall for wall, _ in runs]), ("cpu", [cpu for _, cpu in runs])):
        print(f"render ({label}): {min(values):.3f} ms/email best, {statistics.median(values):.3f} ms/email median")
    return 0


def _measure(renderer: Renderer, jobs: list, emails: int) -> tuple[float, float]:
    cycle = itertools.islice(itertools.cycle(jobs), emails)
    wall, cpu = time.perf_counter(), time.process_time()
    for notice, locale, context in cycle:
        renderer.render(notice, locale, context)
    return ((time.perf_counter() - wall) * 1000 / emails, (time.process_time() - cpu) * 1000 / emails)


if __name__ == "__main__":
    raise SystemExit(main())
