"""No message stops the ingest: broken messages are kept aside, copies are flagged read, a shared Message-ID
hides nothing, a new project keeps aside into folders it creates, and sending-side failures are reported."""

from __future__ import annotations

import io
import json
import mailbox
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import OperationalError

from dunning import store
from dunning.cli import main

from .conftest import AS_OF, account, cli, dsn, import_accounts, maildir_with

CORPORA = Path(__file__).parent / "corpus"


def _sender(capsys, smtp, url: str, address: str = "jane@contoso.example") -> str:
    import_accounts(url, account("acct_1", address))
    code, _ = cli(capsys, "run", "--json", "--as-of", AS_OF)
    assert code == 0
    return smtp.messages[-1].sender


def _ingest(capsys, *sources: str) -> dict:
    code, out = cli(capsys, "bounces", "ingest", "--json", *sources)
    assert code == 0
    return json.loads(out)


def _nested(depth: int) -> bytes:
    head = b"From: MAILER-DAEMON@mx.example\nSubject: Undelivered\nMessage-ID: <deep@mx.example>\n"
    parts = [b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (n, n) for n in range(depth)]
    tails = [b"\n--b%d--\n" % n for n in reversed(range(depth))]
    return head + b"".join(parts) + b"Content-Type: text/plain\n\nx\n" + b"".join(tails)


def _broken(verp: str) -> list[bytes]:
    """A bounce with no From, one with an 8-bit byte in its Message-ID, one nested 1,000 deep."""
    good = dsn("postfix_user_unknown.eml", verp=verp, recipient="jane@contoso.example")
    no_from = b"\n".join(line for line in good.split(b"\n") if not line.startswith(b"From:"))
    eight_bit = good.replace(b"Message-ID: <", b"Message-ID: <\xe9t\xe9", 1)
    return [no_from, eight_bit, _nested(1000)]


def test_broken_messages_never_stop_the_ingest_nor_block_a_maildir(bounce_settings, smtp, capsys, tmp_path):
    """Messages without From, with 8-bit Message-IDs, nested 1,000 deep: each is handled or kept aside, the
    ingest exits 0, and a second run finds nothing left in the Maildir."""
    verp = _sender(capsys, smtp, bounce_settings)
    box = maildir_with(tmp_path / "Maildir", *_broken(verp))
    report = _ingest(capsys, str(box))
    assert report["messages"] == 3 and report["hard"] + report["duplicates"] >= 1
    kept = report["unparsed"] + report["unmatched"] + report["failed"]
    assert kept == len(mailbox.Maildir(tmp_path / "unparsed")) >= 1
    assert _ingest(capsys, str(box))["messages"] == 0


def test_a_message_that_raises_on_stdin_exits_0_and_is_kept(bounce_settings, smtp, capsys, tmp_path, monkeypatch):
    """On standard input (an MTA's pipe) even a message whose reading raises is kept aside and exits 0,
    so the MTA never bounces the bounce."""
    _sender(capsys, smtp, bounce_settings)

    def explode(message):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("dunning.bounces.ingest.classify", explode)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_nested(3))))
    assert _ingest(capsys, "-")["failed"] == 1
    assert len(mailbox.Maildir(tmp_path / "unparsed")) == 1


def test_a_copy_is_flagged_read_and_a_shared_message_id_hides_nothing(bounce_settings, smtp, capsys, tmp_path):
    """The same bounce delivered twice is a duplicate, flagged seen in its Maildir; a different bounce that
    carries the same Message-ID is still read."""
    import_accounts(bounce_settings, account("acct_1", "jane@contoso.example"),
                    account("acct_2", "joe@fabrikam.example"))
    assert cli(capsys, "run", "--json", "--as-of", AS_OF)[0] == 0
    senders = {m.recipients[0]: m.sender for m in smtp.messages}
    first = dsn("postfix_user_unknown.eml", verp=senders["jane@contoso.example"], recipient="jane@contoso.example",
                message_id="<same@mx.example>")
    other = dsn("postfix_user_unknown.eml", verp=senders["joe@fabrikam.example"], recipient="joe@fabrikam.example",
                message_id="<same@mx.example>")
    assert _ingest(capsys, str(maildir_with(tmp_path / "one", first)))["hard"] == 1
    again = maildir_with(tmp_path / "two", first, other)
    report = _ingest(capsys, str(again))
    assert (report["hard"], report["duplicates"]) == (1, 1)
    assert all("S" in again_box.get_flags() for again_box in mailbox.Maildir(again).values())
    with store.connect(bounce_settings).connect() as conn:
        assert set(conn.execute(select(store.suppressions.c.address)).scalars()) == {
            "jane@contoso.example", "joe@fabrikam.example"}


def test_sending_side_failures_suppress_no_one_and_are_reported(bounce_settings, smtp, capsys, tmp_path):
    """A block-list rejection, a DMARC failure and a rate limit suppress no one, even at the soft limit;
    `dunning bounces report` lists them by reason with counts."""
    verp = _sender(capsys, smtp, bounce_settings)
    words = {"5.7.1": "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
             "5.7.26": "550 5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy",
             "4.7.28": "421 4.7.28 Our system has detected an unusual rate of mail, try again later"}
    messages = []
    for n, (status, text) in enumerate(words.items()):
        data = dsn("postfix_user_unknown.eml", verp=verp, recipient="jane@contoso.example",
                   message_id=f"<ours-{n}@mx.example>")
        messages.append(data.replace(b"Status: 5.1.1", b"Status: " + status.encode()).replace(
            b"550 5.1.1 <jane@contoso.example>: Recipient address\n    rejected: User unknown in virtual mailbox table",
            text.encode()))
    report = _ingest(capsys, str(maildir_with(tmp_path / "Maildir", *messages)))
    assert (report["ours"], report["suppressed"]) == (3, [])
    assert report["reasons"] == {"authfailure": 1, "blocked": 1, "ratelimited": 1}
    code, out = cli(capsys, "bounces", "report", "--days", "0", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert {(r["reason"], r["failures"], r["kind"]) for r in rows} == {
        ("authfailure", 1, "ours"), ("blocked", 1, "ours"), ("ratelimited", 1, "ours")}
    code, out = cli(capsys, "bounces", "report", "--days", "0")
    assert "blocked (ours): 1 failures to 1 addresses" in out


def test_complaints_and_auto_replies_suppress_no_one(bounce_settings, smtp, capsys, tmp_path):
    """ARF feedback and an out-of-office reply to the return path are counted as such, suppress no one and
    are not kept aside."""
    verp = _sender(capsys, smtp, bounce_settings)
    arf = (CORPORA / "sisimai" / "messages" / "arf-01.eml").read_bytes()
    vacation = dsn("vacation_autoreply.eml", verp=verp, recipient="jane@contoso.example")
    report = _ingest(capsys, str(maildir_with(tmp_path / "Maildir", arf, vacation)))
    assert (report["feedback"], report["autoreply"], report["suppressed"]) == (1, 1, [])
    assert not (tmp_path / "unparsed").exists()


def test_flufl_bounce_is_quiet_at_default_verbosity(bounce_settings, smtp, capsys, tmp_path):
    """flufl.bounce's detector lines are DEBUG: a default ingest writes none of them to stderr."""
    verp = _sender(capsys, smtp, bounce_settings)
    data = (CORPORA / "flufl" / "simple_01.txt").read_bytes()
    _ingest(capsys, str(maildir_with(tmp_path / "Maildir", data, dsn("exim_plain_quota.eml", verp=verp,
                                                                     recipient="jane@contoso.example"))))
    assert "Running detector" not in capsys.readouterr().err


def test_every_corpus_message_is_ingested_without_an_internal_error(bounce_settings, smtp, capsys, tmp_path):
    """All of Sisimai's, flufl.bounce's and our MTA corpus in one Maildir: the ingest exits 0 and reads each."""
    paths = [p for p in sorted(CORPORA.rglob("*")) if p.suffix in (".eml", ".txt")]
    box = maildir_with(tmp_path / "Maildir", *(p.read_bytes() for p in paths))
    report = _ingest(capsys, str(box))
    assert report["messages"] == len(paths) > 700 and report["failed"] == 0


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project made by `dunning init`, its settings in use, with VERP on and a signing key."""
    for name in ("DUNNING_I18N__TEMPLATES_DIR", "DUNNING_I18N__LOCALES_DIR", "DUNNING_BOUNCES__UNPARSED",
                 "DUNNING_DATABASE__URL"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "acme"
    assert main(["init", str(root)]) == 0
    monkeypatch.setenv("DUNNING_SETTINGS", str(root / "settings.toml"))
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "k")
    monkeypatch.setenv("DUNNING_BOUNCES__RETURN_PATH", "bounces@billing.example.com")
    monkeypatch.chdir(tmp_path)
    return root


def test_a_new_project_keeps_aside_what_it_cannot_parse(project, capsys, monkeypatch):
    """In a fresh `dunning init` project the default unparsed folder (var/bounces/unparsed, inside the
    project wherever the MTA runs the command from) is created for the first message kept aside."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Subject: hello\n\nnot a bounce\n")))
    code, out = cli(capsys, "bounces", "ingest", "-")
    assert code == 0 and "1 unparsed" in out
    assert len(mailbox.Maildir(project / "var" / "bounces" / "unparsed")) == 1


def test_spool_writes_stdin_into_a_maildir_that_ingest_then_reads(bounce_settings, smtp, capsys, tmp_path,
                                                                  monkeypatch):
    """`bounces spool` (the fast end of an MTA pipe) creates the Maildir and puts the message in it, reading
    no settings; the next `bounces ingest` of that Maildir records it."""
    verp = _sender(capsys, smtp, bounce_settings)
    data = dsn("postfix_user_unknown.eml", verp=verp, recipient="jane@contoso.example")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    spool = tmp_path / "spool" / "bounces"
    assert cli(capsys, "bounces", "spool", str(spool)) == (0, "")
    assert len(mailbox.Maildir(spool)) == 1
    assert _ingest(capsys, str(spool))["suppressed"] == ["jane@contoso.example"]


def test_spool_into_a_folder_it_cannot_create_asks_the_mta_to_try_later(capsys, tmp_path, monkeypatch):
    """A spool that cannot be written exits 75 (EX_TEMPFAIL): the MTA keeps the message and tries again."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Subject: x\n\ny\n")))
    assert cli(capsys, "bounces", "spool", str(blocker / "Maildir"))[0] == 75


def test_a_database_failure_defers_the_message_instead_of_keeping_it_aside(bounce_settings, smtp, capsys, tmp_path):
    """When the database fails while a bounce is recorded, the ingest stops with 75 (the MTA tries again
    later) and the message stays unread in its Maildir, not kept aside as if it were the message's fault."""
    verp = _sender(capsys, smtp, bounce_settings)
    box = maildir_with(tmp_path / "Maildir", dsn("postfix_user_unknown.eml", verp=verp,
                                                 recipient="jane@contoso.example"))

    def fail(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("INSERT INTO BOUNCE_MESSAGES"):
            raise OperationalError(statement, {}, Exception("the server closed the connection"))

    event.listen(Engine, "before_cursor_execute", fail)
    try:
        assert cli(capsys, "bounces", "ingest", str(box))[0] == 75
    finally:
        event.remove(Engine, "before_cursor_execute", fail)
    assert not (tmp_path / "unparsed").exists()
    assert _ingest(capsys, str(box))["hard"] == 1
