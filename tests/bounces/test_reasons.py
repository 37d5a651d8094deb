"""Reasons on real bounces no one here wrote: Sisimai's labelled messages of some 70 mail systems, and the
formats of our own detectors (DragonFly, Amazon WorkMail, Amazon SES, AOL, sendmail, ARF, auto-replies)."""

from __future__ import annotations

import email
from collections import defaultdict
from pathlib import Path

import pytest

from dunning.bounces.classify import Failure, classify
from dunning.bounces.reasons import HARD, NOT_BOUNCES, OURS, REASONS, SOFT, effect_of, reason_of

SISIMAI = Path(__file__).parent / "corpus" / "sisimai"


def _labels() -> dict[str, list[tuple[str, str, bool]]]:
    """file → (status, Sisimai's reason, whether the recipient is gone) per failed recipient."""
    labels: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    for line in (SISIMAI / "labels.tsv").read_text().splitlines()[1:]:
        name, _, status, _, reason, hard = line.split("\t")
        labels[name].append((status, reason, hard == "true"))
    return labels


def _verdict(name: str):
    return classify(email.message_from_bytes((SISIMAI / "messages" / name).read_bytes()))


def _paired(labels: list[tuple[str, str, bool]], failures: tuple[Failure, ...]) -> list[tuple[bool, bool]]:
    """(gone, suppressed at once) per labelled recipient: each label takes the failure of its status code,
    else the next one left (Sisimai's tables list recipients without their addresses)."""
    left = list(failures)
    pairs = []
    for status, _, gone in labels:
        match = next((f for f in left if f.status == status), left[0] if left else None)
        if match is not None:
            left.remove(match)
        pairs.append((gone, match is not None and match.kind == "hard"))
    return pairs


def test_one_bounce_suppresses_gone_addresses_and_spares_the_others():
    """Over Sisimai's 588 labelled messages (625 recipients): the share of gone recipients (user unknown,
    host unknown, moved, not accepting mail) that one bounce suppresses, and the share of the others (soft,
    the sending side's, no bounce at all) it would wrongly suppress."""
    pairs = [pair for name, labels in _labels().items() for pair in _paired(labels, _verdict(name).failures)]
    gone = [suppressed for is_gone, suppressed in pairs if is_gone]
    spared = [suppressed for is_gone, suppressed in pairs if not is_gone]
    caught, wrong = sum(gone) / len(gone), sum(spared) / len(spared)
    print(f"\nsisimai corpus: {len(pairs)} recipients; gone suppressed {sum(gone)}/{len(gone)} = {caught:.1%}; "
          f"others suppressed {sum(spared)}/{len(spared)} = {wrong:.1%}")
    assert (len(gone), len(spared)) == (190, 435)
    assert caught >= 0.90
    assert wrong <= 0.03


@pytest.mark.parametrize("name", ["arf-01.eml", "arf-18.eml", "lhost-amazonses-11.eml"])
def test_complaints_are_feedback_and_fail_no_one(name):
    """An ARF report, a Hotmail-style feedback loop mail and an SES complaint are feedback, with no failure."""
    assert (_verdict(name).outcome, _verdict(name).failures) == ("feedback", ())


@pytest.mark.parametrize("name", ["lhost-amazonses-12.eml", "rfc3464-28.eml"])
def test_delivery_notifications_fail_no_one(name):
    verdict = _verdict(name)
    assert verdict.outcome == "delivered" and not verdict.failures


def test_auto_replies_fail_no_one():
    """Sisimai's RFC 3834 vacation messages are auto-replies, never a failure."""
    names = [name for name in _labels() if name.startswith("rfc3834")]
    assert names and {_verdict(name).outcome for name in names} == {"autoreply"}


def test_amazon_ses_json_names_the_recipient_not_a_fragment():
    """An SES bounce notification (JSON) yields its bounced recipient, status and reason; nothing else."""
    (failure,) = _verdict("lhost-amazonses-09.eml").failures
    assert (failure.address, failure.status, failure.reason, failure.kind) == (
        "bounce@simulator.amazonses.com", "5.1.1", "userunknown", "hard")


@pytest.mark.parametrize(("name", "address", "reason"), [
    ("lhost-dragonfly-04.eml", "postmaster@cx.libsisimai.org", "hostunknown"),
    ("lhost-dragonfly-12.eml", None, "mailboxfull"),
    ("lhost-amazonworkmail-01.eml", "kijitora@example.jp", "userunknown"),
    ("lhost-amazonworkmail-04.eml", None, "mailboxfull"),
    ("lhost-aol-01.eml", None, None),
    ("lhost-aol-04.eml", None, None),
    ("lhost-sendmail-15.eml", None, None),
])
def test_own_detectors_read_formats_flufl_does_not(name, address, reason):
    """DragonFly's notice, WorkMail's DSN fields in text, AOL's DSN, sendmail's transcript: the recipient
    is found and its reason is the one Sisimai gives."""
    (label, *_), failures = _labels()[name], _verdict(name).failures
    assert failures, name
    if address:
        assert failures[0].address == address
    assert failures[0].reason == (reason or _ours(label[1]))


def _ours(sisimai: str) -> str:
    return {"rejected": "blocked", "filtered": "filtered"}.get(sisimai, sisimai)


def test_the_vocabulary_is_partitioned():
    """Every reason has one effect; the non-bounces are none of them."""
    assert len(set(REASONS)) == len(HARD) + len(SOFT) + len(OURS)
    assert not set(NOT_BOUNCES) & set(REASONS)
    assert {effect_of(r, final=True) for r in HARD} == {"hard"}
    assert {effect_of(r, final=False) for r in HARD} == {"soft"}
    assert {effect_of(r, final=True) for r in OURS} == {"ours"}


@pytest.mark.parametrize(("status", "text", "reason"), [
    ("5.1.1", "550 5.1.1 <jane@contoso.example>: Recipient address rejected: User unknown", "userunknown"),
    ("5.7.1", "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", "blocked"),
    ("5.1.1", "550 5.1.1 blocked using b.barracudacentral.org", "blocked"),
    ("5.7.26", "550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy",
     "authfailure"),
    ("5.2.2", "552 5.2.2 The email account that you tried to reach is over quota", "mailboxfull"),
    ("5.0.0", "550 Mailbox is full", "mailboxfull"),
    ("4.7.0", "421 4.7.0 Try again later, closing connection (rate limit)", "ratelimited"),
    ("5.4.7", "Message expired, no answer", "expired"),
    ("5.7.1", "550 5.7.1 Message rejected as spam by Content Filtering", "spamdetected"),
    ("5.1.2", "", "hostunknown"),
    ("5.1.10", "", "notaccept"),
    ("5.6.0", "", "policyviolation"),
    (None, "", "undefined"),
])
def test_reason_from_words_then_code(status, text, reason):
    """The words decide first, the RFC 3463 code after; an address that looks like a reason says nothing."""
    assert reason_of(status, text) == reason
    assert reason_of(status, text.replace("jane@", "filtered@")) == reason
