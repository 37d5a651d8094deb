"""Planning alone, two source trees in turn: CPU per account of loading the candidates and of the policy.

The accounts (`--mix all-due`) are imported once, by the first tree. Each run is a child process of one
tree (its `dunning` package first on the path) that reads the candidate batches as `dunning run` does
(the candidate query, `load_accounts`, the key history) and then plans them, with the cycle collector as
a run sets it, and prints the CPU microseconds per account of each part: the medians of `--repeat` passes.

    python -m bench.policy --trees BEFORE AFTER [--accounts 6000] [--rounds 4] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.policy", description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="two source trees of the project (each holding its dunning/ package)")
    parser.add_argument("--accounts", type=int, default=6_000, help="accounts whose every group is due")
    parser.add_argument("--rounds", type=int, default=4, help="runs of each tree, alternating (default 4)")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the accounts in each run (default 5)")
    parser.add_argument("--child", nargs=2, metavar=("DATABASE", "AS_OF"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Import once, run both trees in turn, print the medians."""
    args = parse_args(argv)
    if args.child:
        load, policy = _plan_all(args.child[0], datetime.fromisoformat(args.child[1]), args.repeat)
        print(f"{load:.2f} {policy:.2f}")
        return 0
    if not args.trees:
        raise SystemExit("--trees BEFORE AFTER is needed")
    from bench import data, phases
    from bench.measure import measure

    trees = [tree.resolve() for tree in args.trees]
    figures: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in trees}
    as_of = datetime.now(UTC).strftime("%Y-%m-%dT14:00:00Z")
    workdir = Path(tempfile.mkdtemp(prefix="dunning-policy-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
        env.update({"DUNNING_SETTINGS": str(trees[0] / "settings.toml"), "DUNNING_LINKS__KEYS": secrets.token_hex(32),
                    "PYTHONPATH": str(trees[0])})
        database = workdir / "due.sqlite3"
        file = data.billing_file(workdir / "due.jsonl", args.accounts, mix="all-due", as_of=as_of, env=env,
                                 repo=trees[0])
        measure(phases.dunning("import", str(file), "--json"),
                env={**env, "DUNNING_DATABASE__URL": f"sqlite:///{database}"}, cwd=trees[0])
        for round_ in range(args.rounds):
            for tree in trees if round_ % 2 == 0 else reversed(trees):
                figures[tree].append(_run(tree, env, database, as_of, args.repeat))
                print(f"policy: {tree.name}: load {figures[tree][-1][0]:.1f}, policy {figures[tree][-1][1]:.1f} µs "
                      "per account", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("| CPU µs per account (median) | " + " | ".join(f"`{t.name}`" for t in trees) + " |")
    print("| --- |" + " ---: |" * len(trees))
    for index, name in enumerate(("candidates and loading", "the policy")):
        print(f"| {name} | " + " | ".join(f"{statistics.median(f[index] for f in figures[t]):.1f}" for t in trees)
              + " |")
    return 0


def _run(tree: Path, env: dict[str, str], database: Path, as_of: str, repeat: int) -> tuple[float, float]:
    """One child run of this tree (this file run as a script, so the tree need not hold it)."""
    script = str(Path(__file__).resolve())  # run with -P: without its folder on the path
    argv = [sys.executable, "-P", script, "--child", str(database), as_of, "--repeat", str(repeat)]
    child_env = {**env, "PYTHONPATH": str(tree), "DUNNING_SETTINGS": str(tree / "settings.toml"),
                 "DUNNING_DATABASE__URL": f"sqlite:///{database}"}
    done = subprocess.run(argv, env=child_env, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: the planning run failed: {done.stderr[-2000:]}")
    load, policy = done.stdout.split()[-2:]
    return float(load), float(policy)


def _plan_all(database: str, as_of: datetime, repeat: int) -> tuple[float, float]:
    """Read the candidates and plan them `repeat` times with this interpreter's dunning: CPU µs per account."""
    import gc

    from dunning import ledger, store
    from dunning.billing import loader
    from dunning.planning import candidates
    from dunning.planning.policy import plan
    from dunning.settings import load_settings

    settings = load_settings()
    engine = store.connect(f"sqlite:///{database}")
    locales = frozenset({"en", "fr", "de", "es", "pt_BR", "it", "nl", "ja"})
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000)  # as a run sets it (dunning.run.collector)
    loads, policies = [], []
    for _ in range(repeat):
        started, batches = time.process_time(), []
        with engine.connect() as conn:
            for ids in candidates.candidate_batches(conn, as_of, settings, include_paused=False):
                batches.append((loader.load_accounts(conn, ids), ledger.key_history(conn, ids)))
            conn.rollback()
        loaded = time.process_time()
        for accounts, history in batches:
            plan(accounts, history.handled, as_of, settings, locales=locales, sent=history.sent)
        planned = time.process_time()
        count = sum(len(accounts) for accounts, _ in batches)
        loads.append((loaded - started) / count * 1e6)
        policies.append((planned - loaded) / count * 1e6)
    return statistics.median(loads), statistics.median(policies)


if __name__ == "__main__":
    raise SystemExit(main())
