"""SpamAssassin with local tests only: a spamd on loopback (`--local`), asked through spamc.

The site configuration is Debian's (/etc/spamassassin: its plugin loaders and rules), copied under
a temporary directory with a local.cf that turns off Bayes and auto-learning, so that every scan
depends on the message alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailcheck.ports import free_port, wait_for_port
from mailcheck.verdict import Verdict

SITE_CONFIG = Path("/etc/spamassassin")
START_TIMEOUT = 120.0
LOCAL_CF = """\
use_bayes 0
bayes_auto_learn 0
skip_rbl_checks 1
"""
# Rules about how the message travelled (no relay yet, no signature), not about its content.
TRANSPORT_RULES = frozenset({"NO_RECEIVED", "NO_RELAYS", "MISSING_DATE", "DATE_IN_PAST_24_48",
                             "DATE_IN_PAST_48_96", "DATE_IN_PAST_96_XX", "DATE_IN_FUTURE_96_XX"})
_SCORE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)\s*$")
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s")


@contextmanager
def running_spamd(root: Path) -> Iterator[int]:
    """Start spamd on 127.0.0.1 under root, local tests only; yield its port; stop it on exit."""
    site = root / "site"
    shutil.copytree(SITE_CONFIG, site, ignore=shutil.ignore_patterns("local.cf", "sa-update-hooks.d"))
    (site / "local.cf").write_text(LOCAL_CF)
    home = root / "home"
    home.mkdir()
    os.chmod(root, 0o755)
    os.chmod(home, 0o777)   # spamd's children run as nobody when started by root
    port = free_port()
    command = ["spamd", "--local", f"--listen=127.0.0.1:{port}", "--max-children=2", "--nouser-config",
               f"--siteconfigpath={site}", f"--helper-home-dir={home}", f"--pidfile={root / 'spamd.pid'}",
               "--syslog=stderr"]
    if os.geteuid() == 0:
        command.append("--username=nobody")
    log_path = root / "spamd.log"
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    try:
        wait_for_port(port, process, START_TIMEOUT, "spamd", log_path)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def scan(port: int, eml: bytes) -> Verdict:
    """SpamAssassin's score and rules for one message; content rules that score above 0 are findings."""
    result = subprocess.run(["spamc", "-d", "127.0.0.1", "-p", str(port), "-x", "-R", "-s", "10000000"],
                            input=eml, capture_output=True, timeout=120)
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    total = next((m for m in (_SCORE.match(line) for line in lines[:2]) if m), None)
    if total is None:
        raise RuntimeError(f"spamc gave no score (exit {result.returncode}): "
                           f"{result.stderr.decode('utf-8', 'replace').strip()}")
    symbols: dict[str, float] = {}
    in_table = False
    for line in lines:
        if line.startswith(" pts rule name"):
            in_table = True
            continue
        match = _RULE.match(line) if in_table else None
        if match:
            symbols[match.group(2)] = float(match.group(1))
    failing = sorted(name for name, score in symbols.items() if score > 0 and name not in TRANSPORT_RULES)
    return Verdict("SpamAssassin", float(total.group(1)), symbols, failing)
