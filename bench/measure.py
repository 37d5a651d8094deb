"""Run one command in a child process and measure it alone: wall time, CPU seconds, peak RSS.

The command is started by a bare interpreter (`python -I -S`, a few MB) that forks it, waits for
it with wait4 and meanwhile samples the resident memory of its whole process tree. Forking it from
the benchmark itself would not do: Linux carries the parent's resident set into the child's peak
RSS across fork and exec, so every phase would look at least as large as the benchmark process.

Peak RSS is the larger of two figures: wait4's (the largest peak of any single process of the
tree, exact) and, while the tree holds several processes (delivery workers), the largest sum of
their proportional set sizes (PSS: a page shared by n processes counts 1/n in each) sampled every
0.2 s. A lone process is not sampled, so it pays nothing for being watched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.2

WRAPPER = """\
import json, os, sys, threading, time
PAGE = os.sysconf("SC_PAGE_SIZE")
seen = {"peak": 0, "processes": 1}

def read(path):
    try:
        with open(path) as stream:
            return stream.read()
    except OSError:
        return ""

def threads(pid):
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone meanwhile
        return ()

def tree(root):
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        for tid in threads(pid):
            stack += [int(child) for child in read(f"/proc/{pid}/task/{tid}/children").split()]
    return pids

def pss(pid):
    for line in read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return int((read(f"/proc/{pid}/statm").split() or [0, 0])[1]) * PAGE  # no smaps_rollup: RSS

def sample(root, interval):
    while True:
        pids = tree(root)
        if len(pids) > 1:
            seen["peak"] = max(seen["peak"], sum(pss(pid) for pid in pids))
            seen["processes"] = max(seen["processes"], len(pids))
        time.sleep(interval)

start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[3], sys.argv[3:])
    except OSError as exc:
        print(f"cannot run {sys.argv[3]}: {exc}", file=sys.stderr, flush=True)
    os._exit(127)
threading.Thread(target=sample, args=(pid, float(sys.argv[2])), daemon=True).start()
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
               "peak_rss_mb": max(usage.ru_maxrss * 1024, seen["peak"]) / 2**20,
               "processes": seen["processes"], "returncode": os.waitstatus_to_exitcode(status)}, out)
"""


@dataclass(frozen=True, slots=True)
class Measurement:
    """What one child process (and the processes it started) cost, and what it printed."""

    argv: tuple[str, ...]
    wall: float          # seconds, from fork to exit
    cpu: float           # user + system seconds of the child and the children it waited for
    peak_rss_mb: float   # see the module docstring
    processes: int       # the most processes its tree held at once (as sampled)
    returncode: int
    stdout: str
    stderr: str

    def last_line(self) -> str:
        """The child's last non-empty line of standard output ('' when none)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def describe_failure(self) -> str:
        """The command and the tail of its standard error, for an error message."""
        tail = "\n".join(self.stderr.strip().splitlines()[-15:])
        return f"`{' '.join(self.argv)}` exited with {self.returncode}:\n{tail}"


def measure(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Measurement:
    """Run argv to completion under the wrapper and return its costs and output.

    Output goes to temporary files rather than pipes, so the child never blocks on a full pipe
    and the parent does nothing while the child runs.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".json") as usage_file:
        subprocess.run([sys.executable, "-I", "-S", "-c", WRAPPER, usage_file.name, str(SAMPLE_SECONDS), *argv],
                       stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                       env=dict(env) if env is not None else None, cwd=cwd, check=True)
        usage = json.load(usage_file)
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode("utf-8", "replace") for f in (out, err))
    return Measurement(argv=tuple(argv), wall=usage["wall"], cpu=usage["cpu"], peak_rss_mb=usage["peak_rss_mb"],
                       processes=usage["processes"], returncode=usage["returncode"], stdout=stdout, stderr=stderr)
