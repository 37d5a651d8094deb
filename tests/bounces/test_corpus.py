"""Bounce classification on real-world bounce messages: flufl.bounce's corpus and the MTAs' own DSNs."""

from __future__ import annotations

import email
from collections import Counter
from pathlib import Path

import pytest
from flufl.bounce import scan_message

from dunning.bounces.classify import classify

CORPUS = Path(__file__).parent / "corpus"
FLUFL = sorted((CORPUS / "flufl").glob("*.txt"))
MTA = {path.name: path for path in sorted((CORPUS / "mta").glob("*.eml"))}

# file → (verdict kind, the failed address, its status code)
EXPECTED = {
    "postfix_user_unknown.eml": ("hard", "jane.doe@contoso.example", "5.1.1"),
    "postfix_mailbox_full_delayed.eml": ("soft", "jane.doe@contoso.example", "4.2.2"),
    "postfix_relayed_success.eml": ("delivered", None, None),
    "exim_no_such_user.eml": ("hard", "jane.doe@contoso.example", "5.1.1"),
    "exim_plain_quota.eml": ("soft", "jane.doe@contoso.example", "5.2.2"),
    "office365_ndr.eml": ("hard", "jane.doe@contoso.example", "5.1.10"),
    "gmail_no_such_user.eml": ("hard", "jane.doe@gmail.com", "5.1.1"),
    "gmail_greylisted.eml": ("ours", "jane.doe@contoso.example", "4.7.1"),
    "vacation_autoreply.eml": ("autoreply", None, None),
}


def _parse(path: Path) -> email.message.Message:
    return email.message_from_bytes(path.read_bytes())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mta_bounces_are_classified_with_their_dsn_fields(name):
    """Each MTA's bounce is hard or soft as its status says, for the recipient it names, and a success
    report or an out-of-office reply is no failure."""
    kind, address, status = EXPECTED[name]
    verdict = classify(_parse(MTA[name]))
    assert verdict.kind == kind
    assert [(f.address, f.status) for f in verdict.failures] == ([(address, status)] if address else [])


def test_every_corpus_file_has_an_expectation():
    """No MTA sample sits in the corpus untested."""
    assert set(MTA) == set(EXPECTED)


def test_flufl_corpus_figures():
    """The 117 messages of flufl.bounce's corpus: 35 hard (the recipient is gone: an X.1.x code, a refusal at
    RCPT TO, a directory's words), 76 soft (a full or disabled mailbox, "user unknown" where a filter may have
    said it, a permanent failure that says no reason), one the sending side's, one auto-reply, 4 unparsed."""
    figures = Counter(classify(_parse(path)).kind for path in FLUFL)
    assert len(FLUFL) == 117
    assert figures == {"hard": 35, "soft": 76, "ours": 1, "autoreply": 1, "unparsed": 4}


@pytest.mark.parametrize("path", FLUFL, ids=lambda p: p.name)
def test_every_permanent_failure_flufl_detects_is_reported(path):
    """Every address flufl.bounce reports as failing for good is among the verdict's failures (the DSN fields
    may name the final recipient instead of the original one, so either counts)."""
    message = _parse(path)
    permanent = {raw.decode("utf-8", "replace").lower() for raw in scan_message(message)}
    verdict = classify(message)
    found = {f.address for f in verdict.failures}
    assert not permanent or verdict.failures
    missing = {a for a in permanent if a not in found and "@" in a}
    if missing:  # only allowed where the DSN named a final recipient in its place
        assert len(found) >= len(missing)


def test_dsn_status_decides_over_the_detector():
    """A DSN whose Status is 4.x.x is soft even when its text says the delivery failed."""
    message = _parse(MTA["postfix_user_unknown.eml"])
    raw = message.as_bytes().replace(b"Status: 5.1.1", b"Status: 4.4.1").replace(b"Action: failed",
                                                                                  b"Action: delayed")
    verdict = classify(email.message_from_bytes(raw))
    assert verdict.kind == "soft" and verdict.failures[0].status == "4.4.1"
