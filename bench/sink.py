"""The SMTP sink every phase sends to: Postfix's smtp-sink when installed, else bench.sink_server.

Both print a running `mesg=N` counter; `Sink.count()` reads it, so every phase can check that
the sink received exactly the messages the sender says it sent.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

POSTFIX_DIR = Path("/usr/sbin")
_COUNTER = re.compile(rb"mesg=(\d+)")


class SinkError(RuntimeError):
    """The sink could not be started, or died."""


@dataclass
class Sink:
    """A running sink on loopback."""

    kind: str
    host: str
    port: int
    process: subprocess.Popen
    output: Path

    def count(self, settle: float = 0.25, limit: float = 10.0) -> int:
        """Messages received so far, once the counter has stopped moving for `settle` seconds."""
        self._check_alive()
        deadline = time.monotonic() + limit
        last = self._read()
        while time.monotonic() < deadline:
            time.sleep(settle)
            current = self._read()
            if current == last:
                return current
            last = current
        return last

    def cpu_seconds(self) -> float | None:
        """CPU seconds the sink has used so far (Linux /proc), None where unknown."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def _read(self) -> int:
        with self.output.open("rb") as stream:
            stream.seek(max(0, self.output.stat().st_size - 4096))
            found = _COUNTER.findall(stream.read())
        return int(found[-1]) if found else 0

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SinkError(f"{self.kind} exited with {self.process.returncode}; see {self.output}")

    def close(self) -> None:
        """Stop the sink (it keeps nothing)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def postfix_tool(name: str) -> Path | None:
    """/usr/sbin/smtp-sink or /usr/sbin/smtp-source when Postfix is installed."""
    path = POSTFIX_DIR / name
    return path if path.is_file() and os.access(path, os.X_OK) else (
        Path(found) if (found := shutil.which(name)) else None)


def start_sink(workdir: Path, *, prefer: str = "auto", host: str = "127.0.0.1") -> Sink:
    """Start a sink on a free loopback port; prefer is "auto", "postfix" or "python"."""
    smtp_sink = postfix_tool("smtp-sink")
    if prefer == "postfix" and smtp_sink is None:
        raise SinkError("smtp-sink is not installed (Debian package postfix; try --install-postfix)")
    port = free_port(host)
    output = workdir / "sink.out"
    if smtp_sink is not None and prefer != "python":
        kind = "Postfix smtp-sink"
        argv = [str(smtp_sink), "-c", *(["-u", "nobody"] if os.geteuid() == 0 else []),
                f"{host}:{port}", "1024"]
    else:
        kind = "bench.sink_server (asyncio)"
        argv = [sys.executable, "-m", "bench.sink_server", "--host", host, "--port", str(port)]
    with output.open("wb") as out, (workdir / "sink.err").open("wb") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   cwd=Path(__file__).resolve().parent.parent)
    sink = Sink(kind, host, port, process, output)
    _wait_ready(sink)
    return sink


def free_port(host: str) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _wait_ready(sink: Sink, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sink._check_alive()
        try:
            with socket.create_connection((sink.host, sink.port), timeout=1) as conn:
                if conn.recv(64).startswith(b"220"):
                    conn.sendall(b"QUIT\r\n")
                    return
        except OSError:
            time.sleep(0.05)
    sink.close()
    raise SinkError(f"{sink.kind} did not answer on {sink.host}:{sink.port} within {timeout:.0f} s")


def install_postfix() -> str:
    """Install Debian's postfix package (smtp-sink, smtp-source) without configuring a mail server.

    "No configuration" leaves /etc/postfix/main.cf absent, so no server starts on port 25.
    """
    if postfix_tool("smtp-sink") is not None:
        return "already installed"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SinkError("--install-postfix needs root and apt-get (Debian or Ubuntu)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["debconf-set-selections"], input=b"postfix postfix/main_mailer_type select No configuration\n",
                   check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "postfix"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return "installed"
