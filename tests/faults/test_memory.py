"""Hostile sizes in a real `dunning` process, its peak resident memory measured by the kernel (wait4's rusage):
a 200 MB bounce on standard input (ingested or spooled) or in an mbox file, a 2 GB import line, a template that
writes 100 MB."""

from __future__ import annotations

import io
import json
import mailbox
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from dunning import store
from dunning.billing import sample
from tests.bounces.conftest import bounce_settings, dsn
from tests.bounces.test_robust import _sender
from tests.run.conftest import AS_OF, AS_OF_TEXT, billing, smtp

__all__ = ["billing", "bounce_settings", "smtp"]  # fixtures used by name

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
PEAK = 200 * MB                                       # what no input may make a process hold
BOUNCE = 200 * MB
IMPORT_LINE = int(os.environ.get("DUNNING_TEST_IMPORT_LINE_BYTES", 2 * 1024 * MB))
BLOCK = b"x" * 76 + b"\n"                             # a line of a message body


# The process that measures: a child's ru_maxrss starts at its parent's peak when it execs (Linux carries the
# old address space's high-water mark over), so the command is spawned from a fresh, small interpreter.
_MEASURE = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "dunning", *sys.argv[2:]], os.environ)
_pid, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as peak:
    peak.write(str(usage.ru_maxrss * 1024))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Measured:
    """A finished `dunning` process: exit code, output, and its peak resident memory in bytes."""

    code: int
    out: str
    err: str
    peak: int


def dunning(*args: str, feed: Iterable[bytes] | None = None, env: dict[str, str] | None = None,
            timeout: float | None = None) -> Measured:
    """Run `python -m dunning ARGS`, writing feed to its standard input as it reads it; its peak resident memory
    from wait4's rusage (ru_maxrss is in KiB on Linux). Past timeout seconds, the process is killed and the test
    fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as peak:
        process = subprocess.Popen([sys.executable, "-c", _MEASURE, peak.name, *args], stdout=out, stderr=err,
                                   stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        if feed is not None:
            assert process.stdin is not None
            with process.stdin:
                for block in feed:
                    process.stdin.write(block)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)   # the measuring interpreter and the command it spawned
            process.wait()
            raise AssertionError(f"dunning {' '.join(args)} still ran after {timeout:g} s") from None
        out.seek(0)
        err.seek(0)
        return Measured(process.returncode, out.read(100_000).decode(), err.read(100_000).decode(),
                        int(peak.read() or 0))


def _message(head: bytes, size: int) -> Iterator[bytes]:
    """head, then body lines up to size bytes in all, a megabyte at a time."""
    yield head
    chunk = BLOCK * (MB // len(BLOCK))
    left = size - len(head)
    while left > 0:
        yield chunk[:left]
        left -= len(chunk)


def _kept(folder: Path) -> list[int]:
    box = mailbox.Maildir(folder, factory=None, create=False)
    return [os.path.getsize(folder / box._lookup(key)) for key in box.iterkeys()]  # never read into memory


def test_a_200_mb_bounce_on_standard_input_is_kept_aside_in_bounded_memory(bounce_settings, smtp, capsys,
                                                                             tmp_path):
    """Past bounces.max_message_bytes (10 MiB by default) it is copied aside a block at a time: exit 0, one
    warning line naming it, the whole message in the unparsed Maildir."""
    verp = _sender(capsys, smtp, bounce_settings)
    head = dsn("postfix_user_unknown.eml", verp=verp, recipient="jane@contoso.example")
    try:
        ran = dunning("bounces", "ingest", "--json", "-", feed=_message(head, BOUNCE))
        assert ran.code == 0, ran.err
        report = json.loads(ran.out)
        assert report["messages"] == 1 and report["unparsed"] == 1 and report["hard"] == 0
        assert ran.err.splitlines() == [line for line in ran.err.splitlines() if line], ran.err
        assert len(ran.err.splitlines()) == 1
        assert "stdin: more than bounces.max_message_bytes (10485760 bytes): kept aside unread" in ran.err
        assert _kept(tmp_path / "unparsed") == [BOUNCE]
        assert ran.peak < PEAK, ran.peak
    finally:
        shutil.rmtree(tmp_path / "unparsed", ignore_errors=True)


def test_spool_passes_a_200_mb_message_into_the_maildir_in_bounded_memory(tmp_path):
    """The MTA pipe's end reads no settings and no limit: it copies the message a block at a time."""
    folder = tmp_path / "spool"
    try:
        ran = dunning("bounces", "spool", str(folder), feed=_message(b"Subject: large\n\n", BOUNCE))
        assert ran.code == 0 and ran.out == ran.err == "", ran.err
        assert _kept(folder) == [BOUNCE]
        assert ran.peak < PEAK, ran.peak
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_200_mb_bounce_in_an_mbox_is_kept_aside_and_the_next_is_read(bounce_settings, smtp, capsys, tmp_path):
    verp = _sender(capsys, smtp, bounce_settings)
    first, last = (dsn("postfix_user_unknown.eml", verp=verp, recipient="jane@contoso.example",
                       message_id=f"<{n}@mx.example>") for n in ("first", "last"))
    separator = b"From MAILER-DAEMON Mon Dec  7 10:00:00 2026\n"
    path = tmp_path / "bounces.mbox"
    try:
        with path.open("wb") as file:
            file.write(separator + first + b"\n" + separator)
            for block in _message(first, BOUNCE):
                file.write(block)
            file.write(b"\n" + separator + last + b"\n")
        ran = dunning("bounces", "ingest", "--json", str(path))
        assert ran.code == 0, ran.err
        report = json.loads(ran.out)
        assert report["messages"] == 3 and report["unparsed"] == 1 and report["hard"] == 2, report
        assert len(ran.err.splitlines()) == 1 and (
            f"{path}#2: more than bounces.max_message_bytes (10485760 bytes): kept aside unread" in ran.err), ran.err
        assert _kept(tmp_path / "unparsed") == [BOUNCE + 1]  # and the newline that ends its last line
        assert ran.peak < PEAK, ran.peak
    finally:
        path.unlink(missing_ok=True)
        shutil.rmtree(tmp_path / "unparsed", ignore_errors=True)


def _import_feed(size: int) -> Iterator[bytes]:
    """A good account, a line of size bytes, another good account: JSON Lines through a pipe."""
    buffer = io.StringIO()
    sample.write_jsonl(buffer, sample.generate(2, AS_OF))
    first, second = buffer.getvalue().encode().splitlines(keepends=True)
    yield first + b'{"id": "'
    chunk, left = b"x" * MB, size - 11
    while left > 0:
        yield chunk[:left]
        left -= len(chunk)
    yield b'"}\n' + second


def test_an_import_line_of_2_gb_is_rejected_alone_in_bounded_memory(sqlite_url):
    """Read through a pipe (no file on disk): the line is rejected with its number, the lines around it imported."""
    ran = dunning("import", "--json", "-", feed=_import_feed(IMPORT_LINE), env={"DUNNING_DATABASE__URL": sqlite_url})
    assert ran.code == 65, ran.err
    assert json.loads(ran.out)["imported"] == 2 and json.loads(ran.out)["rejected"] == 1
    assert ran.err.splitlines() == [
        "rejected: line 2: longer than 16777216 bytes (database.max_line_bytes): skipped"], ran.err
    assert ran.peak < PEAK, ran.peak


def test_a_template_that_writes_100_mb_is_refused_before_the_run_writes_anything(billing, smtp, tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates" / "emails", templates)
    text = templates / "past_due.txt"
    text.write_text(text.read_text().replace(
        "{% block content %}", '{% block content %}{% for i in range(100000) %}{{ "x" * 1000 }}{% endfor %}', 1))
    ran = dunning("run", "--json", "--as-of", AS_OF_TEXT,
                  env={"DUNNING_I18N__TEMPLATES_DIR": str(templates),
                       "DUNNING_I18N__LOCALES_DIR": str(REPO / "locales")})
    assert ran.code == 65 and ran.out == "", ran.err
    assert len(ran.err.splitlines()) == 1 and "past_due: its email passes 10485760 characters " \
        "(delivery.max_message_bytes)" in ran.err, ran.err
    assert smtp.messages == []
    with store.connect(billing, migrate=False).connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.emails)).scalar() == 0
    assert ran.peak < PEAK, ran.peak
