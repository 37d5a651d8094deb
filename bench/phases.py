"""Each measured phase: one child process, its counts checked against the sink's."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import report
from bench.measure import Measurement, measure
from bench.prepare import Prepared
from bench.report import Results, Row, Run
from bench.sink import Sink, postfix_tool

SENDER, RECIPIENT = "billing@example.com", "billing@customer.example"


class PhaseError(RuntimeError):
    """A phase's command failed or printed something unreadable: it measured nothing."""


@dataclass
class Bench:
    """What every phase shares: where to run, what to send to, where results go."""

    repo: Path
    workdir: Path
    sink: Sink
    as_of: str
    concurrency: int         # SMTP connections of each delivery process of `dunning run`
    workers: int             # delivery processes of `dunning run` (the main one included)
    env: Mapping[str, str]   # the environment of every child, without DUNNING_DATABASE__URL
    results: Results
    log: bool = True

    @property
    def connections(self) -> int:
        """The SMTP connections `dunning run` opens at most, all its processes together."""
        return self.concurrency * self.workers

    def dunning_env(self, database: Path) -> dict[str, str]:
        """The environment of a `dunning` child working on this SQLite file."""
        return {**self.env, "DUNNING_DATABASE__URL": f"sqlite:///{database}"}

    def measure(self, label: str, argv: list[str], env: Mapping[str, str]) -> tuple[Measurement, float | None]:
        """Run one phase's command; returns its measurement and the sink's CPU seconds meanwhile."""
        self.say(f"{label} …")
        sink_before = self.sink.cpu_seconds()
        measured = measure(argv, env=env, cwd=self.repo)
        sink_after = self.sink.cpu_seconds()
        self.say(f"{label}: {measured.wall:.2f} s, exit {measured.returncode}")
        sink_cpu = None if sink_before is None or sink_after is None else sink_after - sink_before
        return measured, sink_cpu

    def say(self, text: str) -> None:
        if self.log:
            print(f"bench: {text}", file=sys.stderr, flush=True)


def dunning(*args: str) -> list[str]:
    """argv of the dunning CLI in this interpreter."""
    return [sys.executable, "-m", "dunning", *args]


def import_accounts(bench: Bench, key: str, label: str, file: Path, count: int, database: Path) -> Row:
    """`dunning import FILE`: every account imported, none rejected."""
    measured, sink_cpu = bench.measure(label, dunning("import", str(file), "--json"), bench.dunning_env(database))
    summary = _json(measured, label)
    bench.results.check(f"{label}: {summary.get('imported', 0):,} accounts imported, "
                        f"{summary.get('rejected', 0):,} rejected (expected {count:,}, 0)",
                        summary.get("imported") == count and summary.get("rejected") == 0)
    return _add(bench, Row(key, label, count, "accounts", (Run(measured, sink_cpu),)))


def run(bench: Bench, key: str, label: str, database: Path, accounts: int, *, expect_sent: bool,
        repeat: int = 1, pristine: Path | None = None) -> dict:
    """`dunning run --json`, `repeat` times, each on a fresh copy of `pristine` when given (the copy
    is not measured): the sink must receive exactly what each run says it sent. The last run's summary."""
    summary: dict = {}

    def once(what: str) -> Run:
        nonlocal summary
        if pristine is not None:
            fresh_copy(pristine, database)
        measured, summary, sink_cpu = _run_once(bench, what, database, expect_sent)
        return Run(measured, sink_cpu)

    runs = _repeated(label, repeat, once)
    count, unit = (summary.get("sent", 0), "notices") if expect_sent else (accounts, "accounts")
    _add(bench, Row(key, label, count, unit, runs))
    return summary


def _repeated(label: str, repeat: int, once: Callable[[str], Run]) -> tuple[Run, ...]:
    """once(label) `repeat` times, each run's label numbered when there are several."""
    return tuple(once(f"{label} ({number} of {repeat})" if repeat > 1 else label)
                 for number in range(1, repeat + 1))


def fresh_copy(source: Path, database: Path) -> None:
    """database as a copy of the SQLite file source, without the log a run on it left behind."""
    for path in (database, *(database.with_name(database.name + end) for end in ("-wal", "-shm"))):
        path.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(database)) as copy:
        original.backup(copy)


def stages(bench: Bench, label: str, database: Path, pristine: Path) -> None:
    """`dunning run --profile-stages` once more on a fresh copy (not one of the measured runs: its counters
    cost a little): the CPU of each stage per sent email, for the report's budget table."""
    fresh_copy(pristine, database)
    measured, summary, _ = _run_once(bench, label, database, True, "--profile-stages")
    bench.results.stages = report.Budget(summary.get("stages", {}), summary.get("sent", 0), measured.cpu)


def _run_once(bench: Bench, label: str, database: Path, expect_sent: bool,
              *options: str) -> tuple[Measurement, dict, float | None]:
    before = bench.sink.count()
    measured, sink_cpu = bench.measure(label, dunning("run", "--as-of", bench.as_of, "--json", *options),
                                       bench.dunning_env(database))
    summary = _json(measured, label)
    received = bench.sink.count() - before
    sent = summary.get("sent", 0)
    check = bench.results.check
    check(f"{label}: exit status {measured.returncode} (expected 0)", measured.returncode == 0)
    check(f"{label}: sink received {received:,}, run reported {sent:,} sent", received == sent)
    problems = {k: summary.get(k, 0) for k in ("retried", "failed", "unknown", "deferred")}
    check(f"{label}: {_counts(problems)} (expected none)", not any(problems.values()))
    if expect_sent:
        check(f"{label}: {sent:,} sent of {summary.get('planned', 0):,} planned, every one",
              sent == summary.get("planned") and sent > 0)
    else:
        check(f"{label}: {summary.get('planned', 0):,} planned, {sent:,} sent (expected none)",
              sent == 0 and summary.get("planned") == 0)
    return measured, summary, sink_cpu


def baseline(bench: Bench, prepared: Prepared, mode: str, label: str, messages: int, repeat: int = 1) -> Row:
    """The hand-rolled script (bench.baseline) on `messages` sample notices, one SMTP connection."""
    argv = [sys.executable, "-m", "bench.baseline", "--mode", mode, "--messages", str(messages),
            "--host", bench.sink.host, "--port", str(bench.sink.port), "--flat", str(prepared.flat_dir),
            "--templates", str(prepared.templates_dir), "--contexts", str(prepared.contexts)]
    key = report.PRECOMPILED if mode == "precompiled" else report.MJML
    return _sent(bench, key, label, argv, messages, lambda m: _json(m, label).get("messages", 0), repeat)


def smtp_source(bench: Bench, prepared: Prepared, messages: int, repeat: int = 1) -> Row | None:
    """Postfix's smtp-source: the same message size and as many connections as `dunning run` opens in all
    its processes, each connection reused."""
    tool = postfix_tool("smtp-source")
    if tool is None:
        bench.results.skipped.append("smtp-source (Postfix not installed; see --install-postfix)")
        return None
    argv = [str(tool), "-d", "-s", str(bench.connections), "-m", str(messages), "-F", str(prepared.message_file),
            "-f", SENDER, "-t", RECIPIENT, f"{bench.sink.host}:{bench.sink.port}"]
    label = f"smtp-source ({bench.connections} connections, the machine's SMTP limit)"
    return _sent(bench, report.SMTP_SOURCE, label, argv, messages,
                 lambda m: messages if m.returncode == 0 else 0, repeat)


def _sent(bench: Bench, key: str, label: str, argv: list[str], messages: int, reported, repeat: int) -> Row:
    def once(what: str) -> Run:
        before = bench.sink.count()
        measured, sink_cpu = bench.measure(what, argv, bench.env)
        received = bench.sink.count() - before
        if measured.returncode != 0:
            raise PhaseError(measured.describe_failure())
        sent = reported(measured)
        bench.results.check(f"{what}: sink received {received:,}, sender reported {sent:,} of {messages:,}",
                            received == sent == messages)
        return Run(measured, sink_cpu)

    return _add(bench, Row(key, label, messages, "messages", _repeated(label, repeat, once)))


def _add(bench: Bench, row: Row) -> Row:
    bench.results.rows.append(row)
    return row


def _json(measured: Measurement, label: str) -> dict:
    try:
        value = json.loads(measured.last_line())
    except ValueError:
        raise PhaseError(f"{label}: no JSON summary: {measured.describe_failure()}") from None
    if not isinstance(value, dict):
        raise PhaseError(f"{label}: unexpected summary {value!r}")
    return value


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{value:,} {name}" for name, value in counts.items())


def child_environment(repo: Path, sink: Sink, concurrency: int, workers: int, signing_key: str) -> dict[str, str]:
    """This environment without any DUNNING_* of its own, plus the benchmark's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update({
        "DUNNING_SETTINGS": str(repo / "settings.toml"),
        "DUNNING_SMTP__HOST": sink.host, "DUNNING_SMTP__PORT": str(sink.port), "DUNNING_SMTP__TLS": "none",
        "DUNNING_SMTP__CONCURRENCY": str(concurrency), "DUNNING_DELIVERY__WORKERS": str(workers),
        "DUNNING_LINKS__KEYS": signing_key,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    })
    return env


def fleet(bench: Bench, key: str, label: str, postgres_url: str, file: Path, deliverers: int,
          repeat: int = 1) -> Row:
    """One planner and `deliverers` `dunning deliver` services on a PostgreSQL outbox (bench.fleet), each run
    on a fresh schema holding the accounts of `file` (the import is not measured)."""
    summary: dict = {}

    def once(what: str) -> Run:
        nonlocal summary
        run, summary = _fleet_once(bench, what, postgres_url, file, deliverers)
        return run

    runs = _repeated(label, repeat, once)
    return _add(bench, Row(key, label, summary.get("sent", 0), "notices", runs))


def fleet_stages(bench: Bench, label: str, postgres_url: str, file: Path, deliverers: int) -> None:
    """The fleet once more, each of its processes counting its CPU per stage (not one of the measured runs: the
    counters cost a little), for the report's fleet budget."""
    run, summary = _fleet_once(bench, label, postgres_url, file, deliverers, "--profile-stages")
    stages, cpu = summary.get("stages", {}), summary.get("cpu_seconds", {})
    spent = {"planner": cpu.get("planner", 0.0), "deliverers": sum(cpu.get("deliverers", []))}
    if cpu.get("server") is not None:
        spent["server"] = cpu["server"]
    bench.results.fleet_stages = report.FleetBudget(stages.get("planner", {}), stages.get("deliverers", {}),
                                                    summary.get("sent", 0), spent, run.sink_cpu)


def _fleet_once(bench: Bench, what: str, postgres_url: str, file: Path, deliverers: int,
                *options: str) -> tuple[Run, dict]:
    """One fleet on a fresh schema holding the accounts of `file`, checked: its run and its summary."""
    with fresh_schema(postgres_url) as url:
        env = {**bench.env, "DUNNING_DATABASE__URL": url}
        subprocess.run(dunning("import", str(file), "--json"), env=env, cwd=bench.repo, check=True,
                       capture_output=True)
        before = bench.sink.count()
        argv = [sys.executable, "-m", "bench.fleet", "--deliverers", str(deliverers), "--as-of", bench.as_of,
                "--database", url, *options]
        measured, sink_cpu = bench.measure(what, argv, env)
    if measured.returncode != 0:
        raise PhaseError(measured.describe_failure())
    summary = _json(measured, what)
    received, sent = bench.sink.count() - before, summary.get("sent", 0)
    check = bench.results.check
    check(f"{what}: sink received {received:,}, deliverers reported {sent:,} sent "
          f"({' + '.join(map(str, summary.get('sent_by_each', [])))})", received == sent)
    check(f"{what}: {sent:,} sent of {summary.get('planned', 0):,} planned, every one",
          sent == summary.get("planned") and sent > 0)
    problems = {k: summary.get(k, 0) for k in ("retried", "failed", "unknown", "deferred")}
    check(f"{what}: {_counts(problems)} (expected none)", not any(problems.values()))
    return Run(measured, sink_cpu), summary


@contextmanager
def fresh_schema(postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty schema of this PostgreSQL database, dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
