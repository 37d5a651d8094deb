"""rspamd as a local worker: its own config, pid and database directories under a temporary directory.

The worker reads Debian's configuration (/etc/rspamd) with the local and override directories
pointed at our own, listens on loopback only, and has its controller, proxy and fuzzy workers off.
Messages are scanned over its HTTP protocol (POST /checkv2), with the envelope a run would give.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailcheck.ports import free_port, wait_for_port
from mailcheck.verdict import Verdict

CONFIG = Path("/etc/rspamd/rspamd.conf")
START_TIMEOUT = 90.0
# Symbols about how the message travelled rather than what it says: they fire on a message handed to
# rspamd straight from a file (no relay, no DKIM signature, no DNS here), never on its content.
TRANSPORT_SYMBOLS = frozenset({"DATE_IN_PAST", "DATE_IN_FUTURE", "MISSING_DATE", "RCVD_COUNT_ZERO",
                               "R_SPF_NA", "R_DKIM_NA", "ARC_NA", "DMARC_NA"})
# Scored from what the customer is called, not from our copy: a name in another script (an Arabic
# company name in a French email) makes rspamd read accented letters as a mix of charsets. Allowed
# only for emails whose customer names are in another script, and listed in the report.
CUSTOMER_DATA_SYMBOLS = frozenset({"R_MIXED_CHARSET"})


def _write_config(root: Path, port: int) -> None:
    for name in ("override.d", "local.d", "db", "run", "log"):
        (root / name).mkdir(parents=True, exist_ok=True)
    override = root / "override.d"
    (override / "worker-normal.inc").write_text(f'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n')
    for worker in ("controller", "proxy", "fuzzy"):
        (override / f"worker-{worker}.inc").write_text("enabled = false;\n")
    (override / "logging.inc").write_text(f'type = "file";\nfilename = "{root}/log/rspamd.log";\n'
                                          'level = "warning";\n')
    # Content symbols only: no network lookups (RBLs, fuzzy hashes, SPF/DKIM/DMARC), answered fast.
    (root / "local.d" / "options.inc").write_text("dns { timeout = 0.2s; retransmits = 0; }\n")
    for module in ("rbl", "fuzzy_check", "asn", "spf", "dkim", "dmarc", "arc", "emails", "mx_check",
                   "phishing", "url_redirector", "reputation", "neural", "greylist", "ratelimit"):
        (root / "local.d" / f"{module}.conf").write_text("enabled = false;\n")


@contextmanager
def running_rspamd(root: Path) -> Iterator[str]:
    """Start rspamd under root; yield its scan URL; stop it on exit."""
    port = free_port()
    _write_config(root, port)
    command = ["rspamd", "--no-fork", "-u", "root", "-g", "root", "-c", str(CONFIG),
               f"--var=LOCAL_CONFDIR={root}", f"--var=DBDIR={root}/db", f"--var=RUNDIR={root}/run",
               f"--var=LOGDIR={root}/log", "-p", str(root / "run" / "rspamd.pid")]
    log = (root / "log" / "stdout.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    try:
        wait_for_port(port, process, START_TIMEOUT, "rspamd", root / "log" / "rspamd.log")
        yield f"http://127.0.0.1:{port}/checkv2"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def scan(url: str, eml: bytes, sender: str, recipient: str, *, foreign_script_names: bool = False) -> Verdict:
    """rspamd's score and symbols for one message; content symbols that score above 0 are findings."""
    request = urllib.request.Request(url, data=eml, method="POST", headers={
        "IP": "127.0.0.1", "Helo": "mail.example.com", "Hostname": "mail.example.com",
        "From": sender, "Rcpt": recipient})
    for attempt in range(5):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                result = json.load(response)
            break
        except (urllib.error.URLError, ConnectionError):
            if attempt == 4:
                raise
            time.sleep(0.5)
    symbols = {name: float(symbol.get("score", 0.0)) for name, symbol in result.get("symbols", {}).items()}
    allowed = TRANSPORT_SYMBOLS | (CUSTOMER_DATA_SYMBOLS if foreign_script_names else frozenset())
    content = {name: score for name, score in symbols.items() if name not in allowed}
    return Verdict("rspamd", float(result.get("score", 0.0)), symbols,
                   sorted(name for name, score in content.items() if score > 0))
