"""Render cost per email: every shipped scenario in every shipped locale, after warm-up; and start-up cost.

    python bench/render_bench.py [--emails 6000] [--repeat 5] [--reload-interval 1.0] [--no-startup]

Prints the best and median milliseconds per email over the repeats, in wall-clock time and in
CPU time of this process (the honest figure on a machine shared with other work), twice: with the
scenarios' own amounts (formatted values repeat), and with fresh amounts for every email, as in a
run where each account owes its own sum. Compiles happen in the warm-up, as in a run: the MJML once
per notice, Jinja once per notice and locale (or neither, when the user's template cache has them).

Start-up is measured in fresh processes (CPU time, interpreter start included): importing the
renderer, the first email of one notice in one locale, then one email of every notice × locale,
as a delivery worker meets them.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TEMPLATES, LOCALES = REPO / "templates" / "emails", REPO / "locales"


def main(argv: list[str] | None = None) -> int:
    """Measure and print ms/email, then start-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=6000, help="emails per repeat")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reload-interval", type=float, default=1.0,
                        help="seconds between checks of template and .po files (0: every email)")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    parser.add_argument("--startup-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.startup_child:
        return _startup_child()
    from dunning.emails.render import Renderer
    from dunning.emails.scenarios import load_scenarios

    renderer = Renderer(TEMPLATES, LOCALES, reload_interval=args.reload_interval)
    jobs = [(s.notice, locale, s.context) for s in load_scenarios(TEMPLATES)
            for locale in sorted(renderer.available_locales)]
    started = time.perf_counter()
    for notice, locale, context in jobs:
        renderer.render(notice, locale, context)
    warm_up = time.perf_counter() - started
    print(f"{len(jobs)} notice × locale × scenario combinations; warm-up (compiles or cache) {warm_up:.2f} s; "
          f"{args.emails} emails × {args.repeat}, reload_interval={args.reload_interval}")
    fixed = list(itertools.islice(itertools.cycle(jobs), args.emails))
    _report("scenario amounts", [_measure(renderer, fixed) for _ in range(args.repeat)])
    rng = random.Random(7)
    _report("fresh amounts", [_measure(renderer, _varied(jobs, args.emails, rng)) for _ in range(args.repeat)])
    if not args.no_startup:
        _startup()
    return 0


def _report(label: str, runs: list[tuple[float, float]]) -> None:
    for kind, values in (("wall", [wall for wall, _ in runs]), ("cpu", [cpu for _, cpu in runs])):
        print(f"render, {label} ({kind}): {min(values):.3f} ms/email best, "
              f"{statistics.median(values):.3f} ms/email median")


def _measure(renderer, jobs: list) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for notice, locale, context in jobs:
        renderer.render(notice, locale, context)
    return ((time.perf_counter() - wall) * 1000 / len(jobs), (time.process_time() - cpu) * 1000 / len(jobs))


def _varied(jobs: list, emails: int, rng: random.Random) -> list:
    """`emails` jobs whose invoices and balance hold amounts of their own, as the accounts of a run do."""
    out = []
    for notice, locale, context in itertools.islice(itertools.cycle(jobs), emails):
        context = copy.deepcopy(context)
        balance: dict[str, Decimal] = {}
        for invoice in context["invoices"]:
            invoice["total"] = invoice["outstanding"] = _amount(rng, invoice["currency"])
            balance[invoice["currency"]] = balance.get(invoice["currency"], Decimal(0)) + invoice["outstanding"]
        for line in context["balance"]:
            line["amount"] = balance.get(line["currency"]) or _amount(rng, line["currency"])
        out.append((notice, locale, context))
    return out


def _amount(rng: random.Random, currency: str) -> Decimal:
    if currency == "JPY":
        return Decimal(rng.randrange(500, 200000, 100))
    return Decimal(rng.randrange(900, 250000)) / 100


def _startup() -> None:
    """Fresh processes: what a delivery worker pays before and while it meets each notice × locale.

    The first process starts with an empty template cache (as after a template or catalog edit),
    the next ones find what it stored.
    """
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        for attempt in ("first process, empty cache", "next process", "next process"):
            out = subprocess.run([sys.executable, __file__, "--startup-child"], check=True, capture_output=True,
                                 text=True, cwd=REPO, env=env).stdout
            times = json.loads(out)
            print(f"start-up, {attempt} (cpu): interpreter + import {times['import']:.3f} s, "
                  f"first email {times['first']:.3f} s, every notice × locale {times['all']:.3f} s, "
                  f"total {times['total']:.3f} s")


def _startup_child() -> int:
    """Print the CPU seconds of each start-up step of this process as JSON."""
    from dunning.emails.render import Renderer
    from dunning.emails.scenarios import load_scenarios
    from dunning.vocabulary import NOTICES

    imported = _cpu()
    contexts = {s.notice: s.context for s in load_scenarios(TEMPLATES)}
    loaded = _cpu()
    renderer = Renderer(TEMPLATES, LOCALES)
    renderer.render("past_due", "fr", contexts["past_due"])
    first = _cpu()
    for notice, locale in itertools.product(NOTICES, sorted(renderer.available_locales)):
        renderer.render(notice, locale, contexts[notice])
    done = _cpu()
    print(json.dumps({"import": imported, "first": first - loaded, "all": done - first,
                      "total": done - (loaded - imported)}))
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    raise SystemExit(main())
