"""A bounce larger than bounces.max_message_bytes is kept aside unread, and the ingest goes on."""

from __future__ import annotations

import mailbox
import tracemalloc

from tests.bounces.conftest import bounce_settings, dsn, maildir_with
from tests.bounces.test_robust import _ingest, _sender
from tests.run.conftest import smtp

__all__ = ["bounce_settings", "smtp"]  # fixtures used by name

LIMIT = 64 * 1024


def test_a_bounce_past_the_limit_is_kept_aside_unread_and_the_next_is_read(bounce_settings, smtp, capsys, tmp_path,
                                                                              monkeypatch):
    verp = _sender(capsys, smtp, bounce_settings)
    good = dsn("postfix_user_unknown.eml", verp=verp, recipient="jane@contoso.example")
    # 30 MiB: a quarter of it stands well clear of what the ingest holds anyway (its copy blocks, the modules
    # a first ingest imports, about 2.5 MB), so the check says "never read whole" and nothing finer.
    huge = good + (b"x" * 76 + b"\n") * (480 * LIMIT // 77)
    box = maildir_with(tmp_path / "in", huge, good)
    monkeypatch.setenv("DUNNING_BOUNCES__MAX_MESSAGE_BYTES", str(LIMIT))
    tracemalloc.start()
    try:
        report = _ingest(capsys, str(box))
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report["messages"] == 2 and report["unparsed"] == 1 and report["hard"] == 1
    kept = mailbox.Maildir(tmp_path / "unparsed")
    assert [len(kept.get_bytes(key)) for key in kept.iterkeys()] == [len(huge)]
    assert peak < len(huge) // 4, peak  # never read whole: its file is copied aside line by line
