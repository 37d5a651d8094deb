"""The capture server: real aiosmtpd on loopback that keeps and writes what it receives."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from dunning.delivery.capture import CaptureServer, Fault

MESSAGE = (b"From: billing@example.com\r\nTo: a@example.com\r\nSubject: Hello\r\n"
           b"Message-ID: <abc@example.com>\r\n\r\nBody\r\n")


def deliver(port: int, message: bytes = MESSAGE, to=("a@example.com",)) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.sendmail("billing@example.com", list(to), message)


def test_messages_are_kept_with_their_envelope():
    """A received message is kept in memory with envelope sender, recipients and exact bytes."""
    with CaptureServer() as server:
        deliver(server.port, to=("a@example.com", "b@example.com"))
        [message] = server.wait_for(1)
    assert message.sender == "billing@example.com"
    assert message.recipients == ("a@example.com", "b@example.com")
    assert message.data == MESSAGE
    assert message.parsed()["Subject"] == "Hello"


def test_messages_are_written_as_eml_files(tmp_path):
    """With an outbox, each message becomes a .eml file named by time and Message-ID hash."""
    outbox = tmp_path / "outbox"
    with CaptureServer(outbox=outbox) as server:
        deliver(server.port)
        deliver(server.port, MESSAGE.replace(b"<abc@", b"<def@"))
        paths = [m.path for m in server.wait_for(2)]
    files = sorted(outbox.iterdir())
    assert sorted(paths) == files and len(files) == 2
    assert all(p.suffix == ".eml" and not p.name.startswith(".") for p in files)
    assert files[0].name.split("-")[-1] != files[1].name.split("-")[-1]
    assert {p.read_bytes() for p in files} == {MESSAGE, MESSAGE.replace(b"<abc@", b"<def@")}


def test_port_zero_picks_a_free_port_and_the_probe_is_not_counted():
    """Two servers on port 0 get distinct ports; the start-up probe counts as no connection."""
    with CaptureServer() as first, CaptureServer() as second:
        assert first.port != second.port and first.port > 0
        assert first.connections == 0 and first.commands == []


def test_commands_and_connections_are_recorded():
    """Every command is recorded with its session number, and sessions are counted."""
    with CaptureServer() as server:
        deliver(server.port)
        deliver(server.port)
        server.wait_for(2)
    assert server.connections == 2
    assert [c for n, c, _ in server.commands if n == 1] == ["CONNECT", "EHLO", "MAIL", "RCPT", "DATA",
                                                            "QUIT"]
    assert server.count("MAIL") == 2


def test_faults_fire_the_given_number_of_times():
    """A fault with times=2 fires twice, then the server behaves again."""
    with CaptureServer(faults=[Fault("mail", 451, times=2)]) as server:
        for _ in range(2):
            with pytest.raises(smtplib.SMTPSenderRefused):
                deliver(server.port)
        deliver(server.port)
        assert len(server.wait_for(1)) == 1


def test_wait_for_times_out():
    """wait_for raises TimeoutError when fewer messages arrive in time."""
    with CaptureServer() as server, pytest.raises(TimeoutError, match="0 of 1"):
        server.wait_for(1, timeout=0.1)


def test_non_loopback_addresses_are_refused():
    """The capture server refuses to listen on anything but loopback."""
    with pytest.raises(ValueError, match="loopback"):
        CaptureServer(host="0.0.0.0")


def test_the_command_runs_until_interrupted(tmp_path):
    """`dunning capture-server --port 0` prints where it listens, writes .eml files, stops on SIGINT."""
    outbox = tmp_path / "outbox"
    process = subprocess.Popen(
        [sys.executable, "-m", "dunning", "capture-server", "--port", "0", "--outbox", str(outbox)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible)
    try:
        first = process.stdout.readline()
        assert first.startswith("listening on smtp://127.0.0.1:") and str(outbox) in first
        port = int(first.split("smtp://127.0.0.1:")[1].split(",")[0])
        deliver(port)
        assert process.stdout.readline().startswith("received ")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "stopped after 1 message(s)" in out
    assert [p.read_bytes() for p in Path(outbox).glob("*.eml")] == [MESSAGE]


def test_a_late_2xx_fault_still_accepts_the_command():
    """Fault("mail"/"rcpt", 250, delay=...) answers late but accepts, so the message is delivered."""
    import time

    faults = [Fault("mail", 250, "OK slowly", delay=0.05), Fault("rcpt", 250, delay=0.05)]
    with CaptureServer(faults=faults) as server:
        started = time.monotonic()
        deliver(server.port)
        [message] = server.wait_for(1)
    assert time.monotonic() - started >= 0.1
    assert message.sender == "billing@example.com" and message.recipients == ("a@example.com",)


def _interruptible() -> None:
    """Ctrl+C's default in the child: run as a shell's background job, the tests inherit SIGINT ignored, which a
    Python child then keeps ignoring."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
