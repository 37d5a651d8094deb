"""Run one command in a child process and measure it alone: wall time, CPU seconds, peak RSS.

The command is started by a bare interpreter (`python -I -S`, a few MB) that forks it and reads
its rusage with wait4. Forking it from the benchmark itself would not do: Linux carries the
parent's resident set into the child's peak RSS across fork and exec, so every phase would look
at least as large as the benchmark process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

WRAPPER = """\
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        print(f"cannot run {sys.argv[2]}: {exc}", file=sys.stderr, flush=True)
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
               "returncode": os.waitstatus_to_exitcode(status)}, out)
"""


@dataclass(frozen=True, slots=True)
class Measurement:
    """What one child process cost, and what it printed."""

    argv: tuple[str, ...]
    wall: float          # seconds, from fork to exit
    cpu: float           # user + system seconds of the child and the children it waited for
    peak_rss_mb: float   # the largest resident set of the child or any of its waited-for children
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
        subprocess.run([sys.executable, "-I", "-S", "-c", WRAPPER, usage_file.name, *argv], stdout=out,
                       stderr=err, stdin=subprocess.DEVNULL, env=dict(env) if env is not None else None,
                       cwd=cwd, check=True)
        usage = json.load(usage_file)
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode("utf-8", "replace") for f in (out, err))
    return Measurement(argv=tuple(argv), wall=usage["wall"], cpu=usage["cpu"],
                       peak_rss_mb=usage["maxrss_kb"] / 1024, returncode=usage["returncode"],
                       stdout=stdout, stderr=stderr)
