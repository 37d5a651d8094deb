"""Bounces close the loop: VERP on the wire, DSNs ingested once, suppressed addresses left out of planning."""

from __future__ import annotations

import io
import json
import mailbox
import sys

from sqlalchemy import select

from dunning import store
from dunning.bounces.verp import parse_verp

from .conftest import (
    AS_OF,
    KEY,
    NEXT_STAGE,
    RETURN_PATH,
    account,
    cli,
    dsn,
    import_accounts,
    maildir_with,
    plan,
)


def _send(capsys, smtp) -> dict[str, str]:
    """`dunning run` at AS_OF; the VERP envelope sender of each recipient's email."""
    code, _ = cli(capsys, "run", "--json", "--as-of", AS_OF)
    assert code == 0
    return {recipient: message.sender for message in smtp.messages for recipient in message.recipients}


def _suppressed(url: str) -> dict[str, str]:
    with store.connect(url).connect() as conn:
        return dict(conn.execute(select(store.suppressions.c.address, store.suppressions.c.reason)).all())


def _ingest(capsys, *sources: str) -> dict:
    code, out = cli(capsys, "bounces", "ingest", "--json", *sources)
    assert code == 0
    return json.loads(out)


def test_each_email_goes_out_with_its_own_signed_return_path(bounce_settings, smtp, capsys):
    """MAIL FROM is the return path with the email's id and a valid signature; From is unchanged."""
    import_accounts(bounce_settings, account("acct_1", "jane@contoso.example"),
                    account("acct_2", "joe@fabrikam.example"))
    senders = _send(capsys, smtp)
    ids = {parse_verp(sender, RETURN_PATH, [KEY]) for sender in senders.values()}
    assert len(ids) == 2 and None not in ids
    assert all(m.parsed()["From"].addresses[0].addr_spec == "billing@example.com" for m in smtp.messages)


def test_a_hard_bounce_suppresses_the_address_and_the_next_notice_is_suppressed(bounce_settings, smtp, capsys,
                                                                                 tmp_path):
    """A Postfix DSN to the VERP address suppresses the recipient; ingesting it again changes nothing; the
    next stage is planned `suppressed` and its key recorded, so it is never planned again."""
    import_accounts(bounce_settings, account("acct_1", "jane@contoso.example"),
                    account("acct_2", "joe@fabrikam.example"))
    senders = _send(capsys, smtp)
    box = maildir_with(tmp_path / "Maildir", dsn("postfix_user_unknown.eml", verp=senders["jane@contoso.example"],
                                                 recipient="jane@contoso.example"))
    assert _ingest(capsys, str(box))["hard"] == 1
    assert _suppressed(bounce_settings) == {"jane@contoso.example": "hard_bounce"}
    again = _ingest(capsys, str(box))  # flagged seen: passed by
    assert again["messages"] == 0
    copy = tmp_path / "copy.eml"
    copy.write_bytes(mailbox.Maildir(box).get_bytes(next(iter(mailbox.Maildir(box).keys()))))
    with open(copy, "rb") as stdin:
        sys.stdin = io.TextIOWrapper(stdin)
        try:
            assert _ingest(capsys, "-")["duplicates"] == 1
        finally:
            sys.stdin = sys.__stdin__
    entries = {(e["account"], e["notice"]): e for e in plan(capsys, NEXT_STAGE)}
    assert entries[("acct_1", "past_due")]["status"] == "suppressed"
    assert entries[("acct_2", "past_due")]["status"] == "send"
    code, out = cli(capsys, "run", "--json", "--as-of", NEXT_STAGE)
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["suppressed"], summary["unreachable"], summary["sent"]) == (1, 1, 1)
    assert [e["account"] for e in plan(capsys, NEXT_STAGE)] == []


def test_a_forged_bounce_suppresses_nothing_and_is_kept_aside(bounce_settings, smtp, capsys, tmp_path):
    """A DSN to a return path whose signature does not match is counted unmatched, moved to the unparsed
    Maildir, and suppresses nothing."""
    import_accounts(bounce_settings, account("acct_1", "jane@contoso.example"))
    sender = _send(capsys, smtp)["jane@contoso.example"]
    forged = sender.replace(sender.split(".")[1][:8], "aaaaaaaa", 1)
    assert parse_verp(forged, RETURN_PATH, [KEY]) is None
    box = maildir_with(tmp_path / "Maildir", dsn("postfix_user_unknown.eml", verp=forged,
                                                 recipient="jane@contoso.example"))
    assert _ingest(capsys, str(box))["unmatched"] == 1
    assert _suppressed(bounce_settings) == {}
    assert len(mailbox.Maildir(tmp_path / "unparsed")) == 1 and len(mailbox.Maildir(box)) == 0


def test_an_unparsable_message_is_counted_and_kept_aside(bounce_settings, smtp, capsys, tmp_path):
    """A message in which nothing says what failed is counted unparsed and kept in the unparsed Maildir,
    never dropped; read from an mbox file."""
    import_accounts(bounce_settings, account("acct_1", "jane@contoso.example"))
    sender = _send(capsys, smtp)["jane@contoso.example"]
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(dsn("vacation_autoreply.eml", verp=sender, recipient="jane@contoso.example")
            .replace(b"Auto-Submitted: auto-replied", b"X-Note: none").replace(b"Subject: ", b"Subject: Re: "))
    box.flush()
    report = _ingest(capsys, str(tmp_path / "bounces.mbox"))
    assert (report["messages"], report["unparsed"]) == (1, 1)
    assert len(mailbox.Maildir(tmp_path / "unparsed")) == 1
    assert _ingest(capsys, str(tmp_path / "bounces.mbox"))["duplicates"] == 1
    assert len(mailbox.Maildir(tmp_path / "unparsed")) == 1


def test_soft_bounces_suppress_at_the_limit_within_the_window(bounce_settings, smtp, capsys, tmp_path):
    """Mailbox-full bounces of three different emails within 14 days suppress the address; two do not, and
    several reports about one email count once."""
    import_accounts(bounce_settings, *(account(f"acct_{n}", "shared@contoso.example") for n in (1, 2, 3)))
    code, _ = cli(capsys, "run", "--json", "--as-of", AS_OF)
    assert code == 0
    senders = [m.sender for m in smtp.messages]
    assert len(senders) == 3

    def soft(verp: str, n: int) -> bytes:
        return dsn("postfix_mailbox_full_delayed.eml", verp=verp, recipient="shared@contoso.example",
                   message_id=f"<soft-{n}@mx.billing.example.com>", date="Fri, 20 Nov 2026 18:00:00 +0000")

    first = maildir_with(tmp_path / "first", soft(senders[0], 1), soft(senders[0], 2), soft(senders[1], 3))
    assert _ingest(capsys, str(first))["soft"] == 3
    assert _suppressed(bounce_settings) == {}
    last = maildir_with(tmp_path / "last", soft(senders[2], 4))
    assert _ingest(capsys, str(last))["suppressed"] == ["shared@contoso.example"]
    assert _suppressed(bounce_settings) == {"shared@contoso.example": "soft_bounces"}


def test_a_cc_takes_over_when_the_billing_contact_is_suppressed(bounce_settings, smtp, capsys):
    """With the To address suppressed and a cc not, the notice goes to the cc alone."""
    import_accounts(bounce_settings, account("acct_1", "jane@contoso.example", cc=("ap@contoso.example",)))
    code, _ = cli(capsys, "suppressions", "add", "jane@contoso.example", "--reason", "mailbox closed")
    assert code == 0
    (entry,) = [e for e in plan(capsys, AS_OF) if e["status"] == "send"]
    assert (entry["to"], entry["cc"]) == (["ap@contoso.example"], [])
    _send(capsys, smtp)
    assert [m.recipients for m in smtp.messages] == [("ap@contoso.example",)]


def test_lifting_a_suppression_or_changing_the_address_lets_the_next_notice_through(bounce_settings, capsys):
    """After `suppressions remove`, or with a new email imported for the account, the next notice is sent."""
    import_accounts(bounce_settings, account("acct_1", "jane@contoso.example"),
                    account("acct_2", "joe@fabrikam.example"))
    assert cli(capsys, "suppressions", "add", "jane@contoso.example", "joe@fabrikam.example")[0] == 0
    assert {e["status"] for e in plan(capsys, AS_OF) if e["notice"] == "past_due"} == {"suppressed", "skipped"}
    assert cli(capsys, "suppressions", "remove", "JANE@contoso.example", "--reason", "fixed")[0] == 0
    import_accounts(bounce_settings, account("acct_2", "joe.new@fabrikam.example"))
    sent = {e["account"]: e["to"] for e in plan(capsys, AS_OF) if e["status"] == "send"}
    assert sent == {"acct_1": ["jane@contoso.example"], "acct_2": ["joe.new@fabrikam.example"]}
