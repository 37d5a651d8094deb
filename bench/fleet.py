"""`python -m bench.fleet`: one planner and N `dunning deliver` services on one PostgreSQL outbox, measured as one.

The deliverers start first and poll, as services do; the planner (`dunning run --no-deliver`) enqueues
while they send. Once the planner is done and the outbox holds nothing to send or being sent, each
deliverer gets SIGTERM and stops after its batch in hand. Prints one JSON object: the planner's
summary with `sent` replaced by the deliverers' total, each deliverer's count, and `cpu_seconds`: the
planner's, each deliverer's and, when the server runs on this machine, its backends' (each process's
connections are named by PGAPPNAME and their CPU read from /proc while the outbox is watched, every
POLL_SECONDS: a backend's last moments before it ends may be missed). With `--profile-stages`, `stages` holds
the CPU seconds per stage of the planner and of the deliverers together (each counted by `--profile-stages`).

Runs `dunning` from the working directory (a source tree, with PYTHONPATH set to it) and imports nothing of
the benchmark, so that `python bench/fleet.py` measures any tree (bench.fleet_paired).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
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
    tag = f"bench-fleet-{secrets.token_hex(4)}"
    profile = ["--profile-stages"] if args.profile_stages else []
    deliverers = [_start(dunning("deliver", "--forever", "--json", "--poll-seconds", str(POLL_SECONDS), *profile),
                         f"{tag}-d{n}") for n in range(args.deliverers)]
    planner = _start(dunning("run", "--no-deliver", "--json", "--as-of", args.as_of, *profile), f"{tag}-p")
    watch = ServerWatch(args.database, tag)
    planner_cpu = watch.until_exit(planner)
    if planner.returncode == 0:
        watch.until_drained()
    for process in deliverers:
        process.send_signal(signal.SIGTERM)
    deliverer_cpu = [watch.until_exit(process) for process in deliverers]
    watch.close()
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
    summary["cpu_seconds"] = {"planner": planner_cpu, "deliverers": deliverer_cpu, "server": watch.server_cpu()}
    print(json.dumps(summary))
    return 0


def _start(argv: list[str], name: str) -> subprocess.Popen[str]:
    """A child whose PostgreSQL connections carry this application name (its output: one line of JSON)."""
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env={**os.environ, "PGAPPNAME": name})


def _last_json(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The last line the process printed, a JSON object."""
    assert process.stdout is not None
    return dict(json.loads(process.stdout.read().strip().splitlines()[-1]))


class ServerWatch:
    """Watches the outbox, and the CPU of the server's backends whose application name starts with a tag."""

    def __init__(self, url: str, tag: str) -> None:
        from dunning import store

        self._engine = store.connect(url, migrate=False)
        self._tag = tag
        self._backends: dict[int, float] = {}  # backend pid → its CPU seconds when last seen

    def until_exit(self, process: subprocess.Popen[str]) -> float:
        """Wait for the process, sampling meanwhile; its CPU seconds (its own children's included)."""
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            self._sample()
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                return usage.ru_utime + usage.ru_stime
            time.sleep(POLL_SECONDS)

    def until_drained(self) -> None:
        """Return once the outbox holds no email queued, being sent or waiting for a retry."""
        from dunning import ledger

        while sum(ledger.summary(self._engine)[status] for status in PENDING):
            self._sample()
            time.sleep(POLL_SECONDS)

    def server_cpu(self) -> float | None:
        """CPU seconds of the tagged backends seen; None when the server's processes are not on this machine."""
        return sum(self._backends.values()) if self._backends else None

    def close(self) -> None:
        self._engine.dispose()

    def _sample(self) -> None:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name LIKE :tag"),
                                {"tag": f"{self._tag}-%"}).scalars().all()
        for pid in pids:
            try:
                name, _, rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")
            except OSError:  # ended meanwhile, or the server runs elsewhere
                continue
            if name.endswith("(postgres"):  # not a process of this machine that has the same pid
                fields = rest.split()
                self._backends[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
