"""Two source trees, the PostgreSQL fleet (bench.fleet) on the same accounts, runs alternating: CPU per email
of the planner, the deliverers and the server, the rates, and beside each the SQLite `dunning run`.

    python -m bench.fleet_paired --trees BEFORE AFTER --postgres URL [--accounts 10000] [--rounds 3] [--sqlite]

Each tree's fleet runs on a fresh schema of the database holding the accounts (imported by that tree, not
measured), with this tree's bench/fleet.py driving that tree's `dunning`. With --sqlite, each fleet run is
followed by the same tree's `dunning run` on a fresh SQLite file of the same accounts, and the ratio of the
two rates is printed: on a shared machine both rates swing with the load, the CPU per email far less.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import data, phases
from bench.measure import measure
from bench.sink import Sink, start_sink

FLEET = Path(__file__).resolve().with_name("fleet.py")
FIGURES = ("planner", "deliverers", "server", "sink", "all", "rate", "sqlite rate", "ratio")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_paired", description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs=2, type=Path, required=True, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--postgres", default=os.environ.get("DUNNING_BENCH_POSTGRES_URL"), required=False,
                        help="the PostgreSQL database (default $DUNNING_BENCH_POSTGRES_URL)")
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts whose every group is due")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tree, alternating (default 3)")
    parser.add_argument("--deliverers", type=int, default=2)
    parser.add_argument("--sqlite", action="store_true", help="each tree's SQLite `dunning run` too, for the ratio")
    args = parser.parse_args(argv)
    if not args.postgres:
        parser.error("--postgres URL (or DUNNING_BENCH_POSTGRES_URL) is needed")
    return args


def main(argv: list[str] | None = None) -> int:
    """Import the accounts once per run, run both trees in turn, print the medians."""
    args = parse_args(argv)
    trees = [tree.resolve() for tree in args.trees]
    as_of = datetime.now(UTC).strftime("%Y-%m-%dT14:00:00Z")
    workdir = Path(tempfile.mkdtemp(prefix="dunning-fleet-paired-"))
    figures: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    try:
        with start_sink(workdir) as sink:
            env = phases.child_environment(trees[0], sink, 4, 2, secrets.token_hex(32))
            file = data.billing_file(workdir / "due.jsonl", args.accounts, mix="all-due", as_of=as_of, env=env,
                                     repo=trees[0])
            for round_ in range(args.rounds):
                for tree in trees if round_ % 2 == 0 else reversed(trees):
                    tree_env = {**env, "PYTHONPATH": str(tree), "DUNNING_SETTINGS": str(tree / "settings.toml")}
                    run = _fleet(tree, tree_env, sink, args, file, as_of)
                    if args.sqlite:
                        run["sqlite rate"] = _sqlite(tree, tree_env, file, workdir, as_of)
                        run["ratio"] = run["rate"] / run["sqlite rate"]
                    figures[tree].append(run)
                    print(f"fleet_paired: {tree.name}: " + ", ".join(f"{k} {v:,.2f}" for k, v in run.items()),
                          file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(figures))
    return 0


def _fleet(tree: Path, env: dict[str, str], sink: Sink, args: argparse.Namespace, file: Path,
           as_of: str) -> dict[str, float]:
    """One fleet run of this tree on a fresh schema: CPU µs per sent email of each part, and the rate."""
    with phases.fresh_schema(args.postgres) as url:
        run_env = {**env, "DUNNING_DATABASE__URL": url}
        imported = measure(phases.dunning("import", str(file), "--json"), env=run_env, cwd=tree)
        if imported.returncode != 0:
            raise SystemExit(f"{tree}: {imported.describe_failure()}")
        sink_before = sink.cpu_seconds() or 0.0
        measured = measure([sys.executable, str(FLEET), "--deliverers", str(args.deliverers), "--as-of", as_of,
                            "--database", url], env=run_env, cwd=tree)
        sink_cpu = (sink.cpu_seconds() or 0.0) - sink_before
    summary = phases._json(measured, str(tree))
    sent = summary.get("sent", 0)
    if measured.returncode != 0 or not sent or sent != summary.get("planned"):
        raise SystemExit(f"{tree}: the fleet did not send every planned notice: {measured.describe_failure()}")
    cpu = summary["cpu_seconds"]
    per_email = {"planner": cpu["planner"], "deliverers": sum(cpu["deliverers"]), "server": cpu["server"] or 0.0,
                 "sink": sink_cpu}
    run = {name: seconds / sent * 1e6 for name, seconds in per_email.items()}
    run["all"] = sum(run.values())
    run["rate"] = sent / measured.wall
    return run


def _sqlite(tree: Path, env: dict[str, str], file: Path, workdir: Path, as_of: str) -> float:
    """The rate of this tree's `dunning run` on a fresh SQLite file of the same accounts."""
    database = workdir / f"run-{secrets.token_hex(4)}.sqlite3"
    run_env = {**env, "DUNNING_DATABASE__URL": f"sqlite:///{database}"}
    measure(phases.dunning("import", str(file), "--json"), env=run_env, cwd=tree)
    measured = measure(phases.dunning("run", "--as-of", as_of, "--json"), env=run_env, cwd=tree)
    summary = phases._json(measured, str(tree))
    if measured.returncode != 0 or summary.get("sent") != summary.get("planned"):
        raise SystemExit(f"{tree}: the SQLite run did not send every planned notice: {measured.describe_failure()}")
    for path in workdir.glob(f"{database.name}*"):  # the file, its log, its flight logs' folder
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return float(summary["sent"]) / measured.wall


def report(figures: dict[Path, list[dict[str, float]]]) -> str:
    """A markdown table: one column per tree, medians (CPU µs per sent email; rates per second)."""
    trees = list(figures)
    lines = ["| fleet, median of each | " + " | ".join(f"`{t.name}`" for t in trees) + " |",
             "| --- |" + " ---: |" * len(trees)]
    for name in FIGURES:
        if all(name in run for t in trees for run in figures[t]):
            values = [statistics.median(run[name] for run in figures[t]) for t in trees]
            unit = "×" if name == "ratio" else " /s" if "rate" in name else " µs"
            lines.append(f"| {name} | " + " | ".join(f"{v:,.2f}{unit}" if unit == "×" else f"{v:,.0f}{unit}"
                                                     for v in values) + " |")
    lines.append("| every run (all, µs) | " + " | ".join(" · ".join(f"{run['all']:,.0f}" for run in figures[t])
                                                       for t in trees) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
