"""End to end through a real Postfix: a 550 at the far end comes back as a DSN to the VERP address, is
ingested from Postfix's Maildir, and the next plan shows the account `suppressed`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from dunning.delivery.capture import CaptureServer, Fault

from .conftest import AS_OF, NEXT_STAGE, account, cli, import_accounts, plan
from .postfix import POSTFIX, maillog, running_postfix

pytestmark = pytest.mark.skipif(
    not (os.path.exists(POSTFIX) and os.geteuid() == 0) and not os.environ.get("CI"),
    reason="needs Debian's postfix and root to start it (CI installs it in .ci/run)")


@pytest.fixture
def postfix_root():
    """A directory of its own for Postfix's config, queue and Maildir, outside pytest's root-only tmp_path."""
    root = Path(tempfile.mkdtemp(prefix="dunning-postfix-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _wait_for_mail(box: Path, root: Path) -> None:
    deadline = time.monotonic() + 30
    while not (box / "new").is_dir() or not any((box / "new").iterdir()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no DSN reached {box}:\n{maillog(root)}")
        time.sleep(0.1)


def test_a_bounce_through_postfix_suppresses_the_account(bounce_settings, monkeypatch, capsys, postfix_root):
    """dunning → Postfix → sink refusing one address with 550 → Postfix's DSN to the VERP address in a
    Maildir → `dunning bounces ingest` → the next `dunning plan` shows that account suppressed."""
    import_accounts(bounce_settings, account("acct_gone", "gone@contoso.example"),
                    account("acct_ok", "ok@contoso.example"))
    refuse = Fault("rcpt", 550, "5.1.1 <gone@contoso.example>: Recipient address rejected: User unknown",
                   times=None, recipient="gone@contoso.example")
    with CaptureServer(port=0, faults=[refuse]) as sink, running_postfix(postfix_root, sink.port) as (port, box):
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(port))
        code, out = cli(capsys, "run", "--json", "--as-of", AS_OF)
        assert code == 0 and json.loads(out.strip().splitlines()[-1])["sent"] == 2  # Postfix took both
        _wait_for_mail(box, postfix_root)
        assert [m.recipients for m in sink.messages] == [("ok@contoso.example",)]
    code, out = cli(capsys, "bounces", "ingest", "--json", str(box))
    assert code == 0
    report = json.loads(out)
    assert (report["hard"], report["suppressed"]) == (1, ["gone@contoso.example"])
    statuses = {e["account"]: e["status"] for e in plan(capsys, NEXT_STAGE) if e["notice"] == "past_due"}
    assert statuses == {"acct_gone": "suppressed", "acct_ok": "send"}
