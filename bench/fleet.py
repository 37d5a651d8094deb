"""`python -m bench.fleet`: one planner and N `dunning deliver` services on one PostgreSQL outbox, measured as one.

The deliverers start first and poll, as services do; the planner (`dunning run --no-deliver`) enqueues
while they send. Once the planner is done and the outbox holds nothing to send or being sent, each
deliverer gets SIGTERM and stops after its batch in hand. Prints one JSON object: the planner's
summary with `sent` replaced by the deliverers' total, each deliverer's count, and `cpu_seconds`: the
planner's, each deliverer's and, when the server runs on this machine, the server's from the fleet's start to
its end (read from /proc: ServerWatch). With `--profile-stages`, `stages` holds the CPU seconds per stage of
the planner and of the deliverers together (each counted by `--profile-stages`).

Runs `dunning` from the working directory (a source tree, with PYTHONPATH set to it) and imports nothing of
the benchmark, so that `python bench/fleet.py` measures any tree (bench.fleet_paired).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.2
PENDING = ("queued", "sending", "retry")


def dunning(*args: str) -> list[str]:
    return [sys.executable, "-m", "dunning", *args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.splitlines()[0])
    parser.add_argument("--deliverers", type=int, default=2)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--database", required=True, help="the PostgreSQL URL (also DUNNING_DATABASE__URL)")
    parser.add_argument("--profile-stages", action="store_true",
                        help="each process counts its CPU per stage; `stages` holds the planner's and the deliverers'")
    args = parser.parse_args(argv)
    profile = ["--profile-stages"] if args.profile_stages else []
    watch = ServerWatch(args.database)
    deliverers = [_start(dunning("deliver", "--forever", "--json", "--poll-seconds", str(POLL_SECONDS), *profile))
                  for _ in range(args.deliverers)]
    planner = _start(dunning("run", "--no-deliver", "--json", "--as-of", args.as_of, *profile))
    planner_cpu = _until_exit(planner)
    if planner.returncode == 0:
        watch.until_drained()
    for process in deliverers:
        process.send_signal(signal.SIGTERM)
    deliverer_cpu = [_until_exit(process) for process in deliverers]
    server_cpu = watch.close()
    if planner.returncode != 0 or any(process.returncode != 0 for process in deliverers):
        print(f"planner exited {planner.returncode}, deliverers {[p.returncode for p in deliverers]}",
              file=sys.stderr)
        return 1
    summary = _last_json(planner)
    counts = [_last_json(process) for process in deliverers]
    for name in ("sent", "retried", "failed", "unknown"):
        summary[name] = sum(count[name] for count in counts)
    summary["sent_by_each"] = [count["sent"] for count in counts]
    if args.profile_stages:   # CPU seconds per stage: the planner's, and the deliverers' added up
        from dunning.run.stages import add

        delivering: dict[str, float] = {}
        for count in counts:
            add(delivering, count.get("stages", {}))
        summary["stages"] = {"planner": summary.get("stages", {}), "deliverers": delivering}
    summary["cpu_seconds"] = {"planner": planner_cpu, "deliverers": deliverer_cpu, "server": server_cpu}
    print(json.dumps(summary))
    return 0


def _start(argv: list[str]) -> subprocess.Popen[str]:
    """A child whose output, one line of JSON, is read once it ends."""
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def _until_exit(process: subprocess.Popen[str]) -> float:
    """Wait for the process; its CPU seconds (its own children's included)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _last_json(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The last line the process printed, a JSON object."""
    assert process.stdout is not None
    return dict(json.loads(process.stdout.read().strip().splitlines()[-1]))


class ServerWatch:
    """Watches the outbox on one connection of its own, and the CPU the server spends meanwhile.

    The server's CPU is read from /proc, when it runs on this machine: the postmaster's own, that of its
    children alive (backends, WAL writer, checkpointer, autovacuum) and that of its children ended, which
    the kernel adds to the postmaster's once it reaps them. Counted from the watch's start to its close, less
    the watch's own backend: every backend's last moments are counted, as is the server's background work
    that the fleet's writes cause, and the work of any other client of the server meanwhile."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import text

        from dunning import store

        self._engine = store.connect(url, migrate=False)
        self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")  # no snapshot held
        self._own = int(self._conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        self._postmaster = _postgres_parent(self._own)
        self._start = self._cpu()

    def until_drained(self) -> None:
        """Return once the outbox holds no email queued, being sent or waiting for a retry."""
        from sqlalchemy import func, select

        from dunning import store

        pending = select(func.count()).select_from(store.emails).where(store.emails.c.status.in_(PENDING))
        while self._conn.execute(pending).scalar_one():
            time.sleep(POLL_SECONDS)

    def close(self) -> float | None:
        """Close the watch: the server's CPU seconds since it started, or None when the server is elsewhere."""
        end = self._cpu()
        self._conn.close()
        self._engine.dispose()
        if self._start is None or end is None:
            return None
        return max(0.0, end - self._start)

    def _cpu(self) -> float | None:
        """The server's CPU seconds so far, less the watch's own backend's; None when it runs elsewhere."""
        postmaster = _process(self._postmaster) if self._postmaster is not None else None
        if postmaster is None:
            return None
        ticks = postmaster.cpu + postmaster.reaped
        for entry in os.scandir("/proc"):
            if (entry.name.isdigit() and int(entry.name) != self._own
                    and (child := _process(int(entry.name))) is not None and child.parent == self._postmaster):
                ticks += child.cpu
        return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class _Process:
    """What /proc/PID/stat tells of a process; CPU in clock ticks, user and system."""

    name: str
    parent: int
    cpu: int
    reaped: int  # that of its children ended and waited for


def _process(pid: int) -> _Process | None:
    """The process with this pid on this machine; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (name) state ppid … utime stime cutime cstime …": the name may hold spaces and parentheses
    fields = text[text.rindex(")") + 2:].split()
    return _Process(text[text.index("(") + 1:text.rindex(")")], int(fields[1]),
                    int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))


def _postgres_parent(backend: int) -> int | None:
    """The postmaster of the backend with this pid, when that pid is a postgres process of this machine (a
    server elsewhere has its own pids)."""
    process = _process(backend)
    return process.parent if process is not None and process.name == "postgres" else None


if __name__ == "__main__":
    sys.exit(main())
