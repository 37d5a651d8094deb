"""Two source trees, `dunning run` on the same accounts, runs alternating: CPU per sent email, stage by stage.

On a shared machine the rate of one run drifts with the load; the CPU a run spends per email drifts far
less, and alternating the two trees run by run puts both in the same minutes. Each tree runs with its own
`dunning` package (the tree is the working directory) in this interpreter; the accounts are imported
once, by the first tree, and every run starts from a fresh copy of them.

    python -m bench.paired --trees BEFORE AFTER [--accounts 20000] [--rounds 3] [--profile-stages]

Prints, per tree, the median CPU microseconds per sent email of all its processes (start-up included),
the medians of each stage with --profile-stages (both trees must know the option), and every run's figure.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import data, phases
from bench.measure import measure
from bench.sink import start_sink
from dunning.run.stages import STAGES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs=2, type=Path, required=True, metavar=("BEFORE", "AFTER"),
                        help="two source trees of the project (each holding its dunning/ package)")
    parser.add_argument("--accounts", type=int, default=20_000, help="accounts whose every group is due")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tree, alternating (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="delivery processes of each run (default 2)")
    parser.add_argument("--concurrency", type=int, default=4, help="SMTP connections of each (default 4)")
    parser.add_argument("--profile-stages", action="store_true", help="count the CPU of each stage too")
    parser.add_argument("--sink", choices=["auto", "postfix", "python"], default="auto")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Import once, run both trees in turn, print the medians."""
    args = parse_args(argv)
    trees = [tree.resolve() for tree in args.trees]
    as_of = datetime.now(UTC).strftime("%Y-%m-%dT14:00:00Z")
    workdir = Path(tempfile.mkdtemp(prefix="dunning-paired-"))
    figures: dict[Path, list[tuple[float, dict[str, float]]]] = {tree: [] for tree in trees}
    try:
        with start_sink(workdir, prefer=args.sink) as sink:
            env = phases.child_environment(trees[0], sink, args.concurrency, args.workers, secrets.token_hex(32))
            pristine, database = workdir / "due.sqlite3", workdir / "run.sqlite3"
            file = data.billing_file(workdir / "due.jsonl", args.accounts, mix="all-due", as_of=as_of, env=env,
                                     repo=trees[0])
            dunning_env = {**env, "DUNNING_DATABASE__URL": f"sqlite:///{pristine}"}
            measure(phases.dunning("import", str(file), "--json"), env=dunning_env, cwd=trees[0])
            for round_ in range(args.rounds):
                for tree in trees if round_ % 2 == 0 else reversed(trees):
                    phases.fresh_copy(pristine, database)
                    figures[tree].append(_run(tree, env, database, as_of, args.profile_stages))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(figures, args.profile_stages))
    return 0


def _run(tree: Path, env: dict[str, str], database: Path, as_of: str, profile: bool) -> tuple[float, dict[str, float]]:
    """One run of this tree: CPU µs per sent email, and per stage when profiled."""
    argv = phases.dunning("run", "--as-of", as_of, "--json", *(["--profile-stages"] if profile else []))
    run_env = {**env, "DUNNING_DATABASE__URL": f"sqlite:///{database}",
               "PYTHONPATH": str(tree), "DUNNING_SETTINGS": str(tree / "settings.toml")}
    measured = measure(argv, env=run_env, cwd=tree)
    summary = phases._json(measured, str(tree))
    sent = summary.get("sent", 0)
    if measured.returncode != 0 or not sent or sent != summary.get("planned"):
        raise SystemExit(f"{tree}: the run did not send every planned notice: {measured.describe_failure()}")
    per_email = {stage: spent / sent * 1e6 for stage, spent in summary.get("stages", {}).items()}
    print(f"paired: {tree.name}: {measured.cpu / sent * 1e6:,.0f} µs per email ({sent:,} sent)", file=sys.stderr)
    return measured.cpu / sent * 1e6, per_email


def report(figures: dict[Path, list[tuple[float, dict[str, float]]]], profiled: bool) -> str:
    """A markdown table: one column per tree, medians."""
    trees = list(figures)
    lines = ["| CPU µs per sent email (median) | " + " | ".join(f"`{t.name}`" for t in trees) + " |",
             "| --- |" + " ---: |" * len(trees)]
    rows = [("all processes, start-up included", lambda runs: [total for total, _ in runs])]
    if profiled:
        rows += [(stage, lambda runs, s=stage: [stages.get(s, 0.0) for _, stages in runs]) for stage in STAGES]
        rows.append(("stages together", lambda runs: [sum(stages.values()) for _, stages in runs]))
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(f"{statistics.median(values(figures[t])):,.0f}" for t in trees)
                     + " |")
    lines.append("| every run | " + " | ".join(" · ".join(f"{total:,.0f}" for total, _ in figures[t])
                                             for t in trees) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
