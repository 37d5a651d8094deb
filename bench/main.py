"""`python -m bench`: every phase in one run, side by side, against one SMTP sink; one table."""

from __future__ import annotations

import argparse
import compileall
import os
import pickle
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import baseline as hand_rolled
from bench import data, phases, recovery, report
from bench.phases import Bench, PhaseError
from bench.prepare import Prepared, prepare
from bench.report import Results
from bench.sink import SinkError, install_postfix, start_sink

REPO = Path(__file__).resolve().parent.parent
SMALL = {"accounts": 300, "baseline_sample": 200, "million": 2000, "report_emails": 2000}


PHASES = ("run", "baselines", "smtp-source", "million", "report")


def _phases(text: str) -> tuple[str, ...]:
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in PHASES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown phase {', '.join(unknown) or '(none)'}; choose from "
                                         f"{', '.join(PHASES)}")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0].strip("`: "))
    parser.add_argument("--accounts", type=int, default=100_000,
                        help="accounts whose every group is due, for `dunning run` (default 100,000)")
    parser.add_argument("--baseline-sample", type=int, default=10_000,
                        help="messages each hand-rolled baseline sends (default 10,000)")
    parser.add_argument("--mjml-sample", type=int,
                        help="messages of the MJML-per-message baseline (default: --baseline-sample; "
                             "it is the slowest phase, at a few dozen messages a second)")
    parser.add_argument("--million", type=int, default=1_000_000,
                        help="accounts with nothing due, for the import and the no-op run (default 1,000,000)")
    parser.add_argument("--report-emails", type=int, default=1_000_000,
                        help="sent emails in the ledger `dunning report` reads (default 1,000,000)")
    parser.add_argument("--repeat", type=int,
                        help="runs of `dunning run`, the precompiled baseline and smtp-source, each reported "
                             "by its median run (default 3; 1 with --small)")
    parser.add_argument("--small", action="store_true",
                        help=f"a quick check that the benchmark works ({SMALL['accounts']} accounts, "
                             f"{SMALL['baseline_sample']} baseline messages, {SMALL['million']:,} for the "
                             "million phases); targets are shown, not judged")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="SMTP connections of each delivery process of `dunning run` (default 4); "
                             "smtp-source opens as many as all of them together")
    parser.add_argument("--workers", type=int,
                        help="delivery processes of `dunning run` (default: delivery.workers in settings.toml)")
    parser.add_argument("--sink", choices=["auto", "postfix", "python"], default="auto",
                        help="Postfix smtp-sink when installed (auto), or the asyncio sink in bench/")
    parser.add_argument("--install-postfix", action="store_true",
                        help="install Debian's postfix package for smtp-sink and smtp-source (root, apt-get)")
    parser.add_argument("--as-of", help="the moment to plan for (default: today 14:00 UTC)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.md",
                        help="where to write the table (default bench/results/latest.md)")
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get("DUNNING_BENCH_POSTGRES_URL"),
                        help="a PostgreSQL database for the row of one planner and --deliverers `dunning deliver` "
                             "(default $DUNNING_BENCH_POSTGRES_URL; without one that row is not run)")
    parser.add_argument("--deliverers", type=int, default=2,
                        help="`dunning deliver` processes beside the planner on PostgreSQL (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data, databases)")
    parser.add_argument("--only", type=_phases, default=PHASES, metavar="PHASE[,PHASE…]",
                        help=f"run only these phases, of {', '.join(PHASES)} (default: all); e.g. "
                             "`--only million` for the million-account import and no-op run")
    args = parser.parse_args(argv)
    if args.small:
        for name, value in SMALL.items():
            setattr(args, name, value)
    if args.workers is None:
        from dunning.settings import load_settings
        args.workers = load_settings(REPO / "settings.toml").delivery.workers
    if args.repeat is None:
        args.repeat = 1 if args.small else 3
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.mjml_sample = args.mjml_sample or args.baseline_sample
    args.as_of = args.as_of or datetime.now(UTC).strftime("%Y-%m-%dT14:00:00Z")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every check passes (and every target, unless --small)."""
    args = parse_args(argv)
    if args.install_postfix:
        print(f"bench: postfix {install_postfix()}", file=sys.stderr)
    results = Results(header=[], judged=not args.small)
    # As `pip install` does: without it, a host that sets PYTHONDONTWRITEBYTECODE compiles every module of the
    # package again at each process's start, and the short phases measure that.
    compileall.compile_dir(REPO / "dunning", quiet=1)
    workdir = Path(tempfile.mkdtemp(prefix="dunning-bench-"))
    try:
        with start_sink(workdir, prefer=args.sink) as sink:
            env = phases.child_environment(REPO, sink, args.concurrency, args.workers, secrets.token_hex(32))
            bench = Bench(REPO, workdir, sink, args.as_of, args.concurrency, args.workers, env, results)
            run_phases(bench, args)
    except SinkError as exc:
        results.check(f"SMTP sink: {exc}", False)
    finally:
        if args.keep:
            print(f"bench: work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report.render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"bench: written to {args.out}", file=sys.stderr)
    return report.exit_code(results)


def run_phases(bench: Bench, args: argparse.Namespace) -> None:
    """Prepare, then every phase in order; a failing phase is recorded and the others still run."""
    from dunning.settings import load_settings

    bench.say(f"preparing (sink: {bench.sink.kind} on port {bench.sink.port}) …")
    load_before = os.getloadavg()[0]
    prepared = prepare(load_settings(REPO / "settings.toml"), REPO, bench.workdir)
    bench.results.header = header(bench, args, prepared, load_before)   # in case a phase ends the run
    summary = (attempt(bench, "`dunning run`", lambda: pipeline(bench, args)) if "run" in args.only else None) or {}
    fleet_label = f"1 planner + {args.deliverers} `dunning deliver`, PostgreSQL"
    if args.postgres and "run" in args.only:
        attempt(bench, fleet_label, lambda: phases.fleet(bench, report.FLEET, fleet_label, args.postgres,
                                                         bench.workdir / "due.jsonl", args.deliverers, args.repeat))
        budget_label = f"{fleet_label}, `--profile-stages`: its CPU budget"
        attempt(bench, budget_label, lambda: phases.fleet_stages(bench, budget_label, args.postgres,
                                                                 bench.workdir / "due.jsonl", args.deliverers))
    else:
        bench.results.skipped.append(f"{fleet_label} (no PostgreSQL: --postgres URL or DUNNING_BENCH_POSTGRES_URL)")
    # The MJML baseline runs once: it is shown for reference and takes minutes.
    for mode, label, sample, repeat in (
            ("precompiled", "baseline: Jinja2 + precompiled HTML + EmailMessage + smtplib", args.baseline_sample,
             args.repeat),
            ("mjml", "baseline: the same, MJML compiled per message", args.mjml_sample, 1)):
        if "baselines" in args.only:
            attempt(bench, label, partial(phases.baseline, bench, prepared, mode, label, sample, repeat))
    messages = summary.get("sent") or args.accounts
    if "smtp-source" in args.only:
        attempt(bench, "smtp-source", lambda: phases.smtp_source(bench, prepared, messages, args.repeat))
    if "million" in args.only:
        attempt(bench, "million", lambda: million(bench, args))
    if "report" in args.only:
        attempt(bench, "report", lambda: recovery.recovery(bench, args.report_emails))
    bench.results.header = header(bench, args, prepared, load_before)


def pipeline(bench: Bench, args: argparse.Namespace) -> dict:
    """Import the due accounts, run (each time on a fresh copy of the import), then run again: the
    second run must send nothing."""
    imported, database = bench.workdir / "due.sqlite3", bench.workdir / "run.sqlite3"
    file = billing(bench, "due.jsonl", args.accounts, "all-due")
    phases.import_accounts(bench, "import", "`dunning import`, every group due", file, args.accounts, imported)
    summary = phases.run(bench, report.RUN, "`dunning run`, end to end", database, args.accounts,
                         expect_sent=True, repeat=args.repeat, pristine=imported)
    phases.stages(bench, "`dunning run --profile-stages`: the CPU budget", database, imported)
    phases.run(bench, report.RERUN, "`dunning run` again: all handled, nothing sent twice", database,
               args.accounts, expect_sent=False)
    return summary


def million(bench: Bench, args: argparse.Namespace) -> None:
    """Import the accounts with nothing due, then the no-op run over them."""
    database = bench.workdir / "million.sqlite3"
    file = billing(bench, "million.jsonl", args.million, "none-due")
    phases.import_accounts(bench, "import-million", "`dunning import`, nothing due", file, args.million, database)
    file.unlink()
    # The import leaves about a gigabyte of dirty pages: flushed first, the no-op run is not measured
    # against the disk writing them back, which a cron run hours after the import never meets.
    os.sync()
    phases.run(bench, report.NOOP, "`dunning run`, nothing due (no-op)", database, args.million, expect_sent=False)


def billing(bench: Bench, name: str, count: int, mix: str) -> Path:
    """A billing-state file in the work directory (not measured: it is the input, not the work)."""
    bench.say(f"writing {count:,} accounts ({mix}) …")
    start = time.perf_counter()
    path = data.billing_file(bench.workdir / name, count, mix=mix, as_of=bench.as_of, env=bench.env,
                             repo=bench.repo)
    bench.say(f"written in {time.perf_counter() - start:.1f} s")
    return path


def attempt(bench: Bench, what: str, phase: Callable[[], Any]) -> Any:
    """Run a group of phases; a failure becomes a failed check instead of ending the benchmark."""
    try:
        return phase()
    except (PhaseError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip() if isinstance(exc, subprocess.CalledProcessError) \
            and exc.stderr else str(exc)
        bench.say(f"{what} failed: {detail}")
        bench.results.check(f"{what}: {detail}", False)
        return None


def header(bench: Bench, args: argparse.Namespace, prepared: Prepared, load_before: float) -> list[str]:
    """Where and how this run was measured."""
    contexts = pickle.loads(prepared.contexts.read_bytes())
    baseline_kb = statistics.fmean(hand_rolled.message_sizes(prepared.flat_dir, prepared.templates_dir,
                                                             contexts, "precompiled")) / 1024
    return [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_cpu()} ({os.cpu_count()} cores), "
        f"Linux {platform.release()}, Python {platform.python_version()}; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after.",
        f"SMTP sink: {bench.sink.kind} on loopback. Connections: {bench.connections} for `dunning run` "
        f"({bench.concurrency} in each of its {bench.workers} delivery processes) and for smtp-source, "
        "1 (reused) for each baseline.",
        f"Runs: {args.repeat} of `dunning run` end to end (each on a fresh copy of the imported accounts), "
        "of the precompiled baseline and of smtp-source, each reported by its median run (the rate of every "
        "run in the last column; peak RSS: the largest); one of every other phase.",
        f"Billing state as of {bench.as_of}: {args.accounts:,} accounts where every group is due for a "
        f"notice; {args.million:,} accounts with nothing due (5% with a card expiring within two months, "
        "before its first reminder; 2% in dunning but paused)."
        + ("" if args.only == PHASES else f" Phases run: {', '.join(args.only)}."),
        f"Message size: `dunning run` {prepared.mean_bytes / 1024:.1f} KB on average over "
        f"{prepared.context_count} sample notices in every locale (smtp-source sends one of "
        f"{prepared.message_bytes / 1024:.1f} KB); baselines {baseline_kb:.1f} KB.",
        "Each phase runs alone; CPU seconds and peak RSS cover its process and every process it starts "
        "(peak RSS: the sum of their PSS while they run together); sink CPU s is what the sink spent meanwhile, "
        "on the same cores.",
    ]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
