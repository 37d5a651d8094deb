"""A real Postfix of its own on loopback for the end-to-end bounce test: own config and queue directories,
relaying everything to a loopback sink, delivering mail for the bounce domain to a Maildir."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"

_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
virtual   unix  - n n -    - virtual
lmtp      unix  - - n -    - lmtp
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = /var, /dev/stdout, {root}
maillog_file = {root}/maillog
myhostname = mx.billing.example.com
mydomain = billing.example.com
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
# Every outside domain goes to the loopback sink; no DNS is ever asked.
relayhost = [127.0.0.1]:{sink_port}
smtp_host_lookup = native
smtp_dns_support_level = disabled
smtp_tls_security_level = none
# The bounce domain is delivered here, every address of it to one Maildir.
virtual_mailbox_domains = billing.example.com
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:bounces/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
recipient_delimiter = +
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
biff = no
"""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_postfix(root: Path, sink_port: int) -> Iterator[tuple[int, Path]]:
    """Start Postfix under root/ (its config in root/etc); its SMTP port and the bounce Maildir; stop it after.

    root must not lie inside a directory only root can enter (pytest's tmp_path does): Postfix's daemons
    run as the postfix user."""
    account = pwd.getpwnam("postfix")
    os.chmod(root, 0o755)  # Postfix's own user must reach its data directory and the Maildir
    port = free_port()
    etc = root / "etc"
    for sub in ("etc", "queue", "data", "mail"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chown(root / "data", account.pw_uid, account.pw_gid)
    os.chown(root / "mail", account.pw_uid, account.pw_gid)
    (etc / "master.cf").write_text(_MASTER_CF.format(port=port))
    (etc / "main.cf").write_text(_MAIN_CF.format(root=root, sink_port=sink_port, uid=account.pw_uid,
                                                 gid=account.pw_gid))
    command = [POSTFIX, "-c", str(etc)]
    subprocess.run([*command, "set-permissions"], check=False, capture_output=True)
    subprocess.run([*command, "check"], check=True, capture_output=True)
    subprocess.run([*command, "start"], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Postfix did not listen on {port}: {maillog(root)}")
            time.sleep(0.1)
        yield port, root / "mail" / "bounces"
    finally:
        subprocess.run([*command, "stop"], check=False, capture_output=True)


def maillog(root: Path) -> str:
    """Postfix's log, for a failure's message."""
    path = root / "maillog"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no maillog)"
