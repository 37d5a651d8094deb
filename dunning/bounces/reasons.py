"""Why a recipient failed: one reason of a fixed vocabulary, and what it means for the address. Pure.

The vocabulary follows Sisimai's (the reference for bounce reasons) and is documented in docs/bounces.md.
A reason is decided from the diagnostic text first, since real MTAs put generic or wrong status codes on
specific failures (a 5.1.1 for a block list, a 5.0.0 for everything), then from the enhanced status code
(RFC 3463). Its effect is what the ingest does with it: `hard` suppresses the address at once (the
mailbox or domain is gone, for good), `soft` counts toward the soft limit (the mailbox exists but cannot
take mail now), `ours` never counts against the customer (the sending side must be fixed).
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["Effect", "REASONS", "HARD", "SOFT", "OURS", "NOT_BOUNCES", "reason_of", "effect_of"]

Effect = Literal["hard", "soft", "ours"]

HARD = ("userunknown", "hostunknown", "hasmoved", "notaccept")
SOFT = ("mailboxfull", "suspend", "filtered", "expired", "networkerror", "undefined")
OURS = ("blocked", "policyviolation", "securityerror", "authfailure", "spamdetected", "virusdetected",
        "ratelimited", "exceedlimit")
NOT_BOUNCES = ("feedback", "autoreply", "delivered")
REASONS = HARD + SOFT + OURS

# Checked in this order: the first that matches decides. What says the sending side is at fault comes
# before what names the recipient, since a rejection of us often quotes the recipient ("<jane@…>: 550
# blocked using zen.spamhaus.org").
_TEXT: tuple[tuple[str, str], ...] = (
    # Refused at MAIL FROM: our sender was, whatever the words say of the recipient.
    ("blocked", r"after mail from|in reply to mail from"),
    # The recipient's own delivery program failed (a pipe, procmail): the mailbox may well exist.
    ("networkerror", r"pipe to \||procmail|couldn'?t create|failed to read|command died|mailer error"),
    ("userunknown", r"recipient address rejected: (access denied|user unknown)"),
    ("authfailure", r"\bspf\b|dkim|dmarc|sender policy framework|not authenticated|unauthenticated|"
                    r"authentication (check )?fail|5\.7\.2[3-7]\b|\bptr\b.*\b(spf|dkim)"),
    ("virusdetected", r"virus|malware|infected|trojan|dangerous (content|attachment)|banned attachment"),
    ("blocked", r"block ?list|black ?list|deny ?list|\bdnsbl|\brbl\b|spamhaus|spamcop|barracuda|sorbs|"
                r"listed (at|on|by)\b|\bblocked\b|reputation|reverse (dns|lookup|hostname)|\bptr\b|"
                r"\brdns\b|find your (reverse )?hostname|client host .*rejected|connection (refused|rejected) "
                r"(from|by)|not allowed to send|sender .*(rejected|denied|refused|not allowed)|"
                r"(access|relay(ing)?) (denied|not permitted)|not permitted to relay|unable to relay|"
                r"relay access|we do not relay|relaying (denied|not allowed)|not authorized|unauthorized|"
                r"rejected by (the )?recipient'?s? (filter|domain)|filtered|administrative prohibition|"
                r"domain of sender|sender address rejected|sender verify|your (ip|host|server)|"
                r"\bip\b.{0,40}(rejected|refused|denied|banned)|refused to talk|rejecting (mail|connections)|"
                r"recipient preferences|my name was rejected"),
    ("spamdetected", r"\bspam\b|junk mail|bulk mail|unsolicited|looks like spam|message content rejected|"
                     r"content rejected|message (was )?(rejected|refused) (as|because).{0,30}(spam|suspicious)"),
    ("ratelimited", r"rate limit|too many (messages|connections|recipients|mails|emails|concurrent)|"
                    r"throttl|slow down|sending (rate|limit)|try (again )?later|temporarily deferred|"
                    r"exceeded .{0,30}(rate|sending limit|connection limit)|too fast"),
    ("securityerror", r"\btls\b|starttls|encryption (is )?required|certificate|smtp auth|"
                      r"authentication required|must (be )?authenticate"),
    ("exceedlimit", r"message (size )?(is )?too (big|large)|size limit|exceeds (the )?(maximum|size|message size)|"
                    r"message length exceeds|message size exceeds|too large for"),
    ("mailboxfull", r"mailbox (is |was )?full|full mailbox|over ?quota|quota (exceeded|full)|exceed(ed|s)? "
                    r"(the |his |her |its |their )?(storage|quota|mailbox)|insufficient (system )?storage|"
                    r"mailbox size limit|disk quota|out of (disk )?space|mail ?box (has )?exceeded|"
                    r"not enough (disk )?space|mailbox (is )?over"),
    ("hasmoved", r"has moved|has been moved|moved to|address (has )?changed|no longer (with|at|uses)|"
                 r"forwarding address|user has changed"),
    ("notaccept", r"(does not|doesn'?t|do not) accept (any |e-?)?mail|not accepting (any )?mail|accepts no mail|"
                  r"null mx|no mail (is )?accepted|no smtp service|\b521[ -][45]\.\d"),
    ("suspend", r"(account|mailbox|user|address)( \S+)? (is |has been |was )?(disabled|suspended|deactivated|"
                r"inactive|locked|frozen|on hold)|temporarily (disabled|deactivated|suspended|unavailable)|"
                r"account (is )?(expired|closed)|disabled (account|mailbox)"),
    ("networkerror", r"not found, try again|malformed or unexpected|name server reply|"
                     r"dns (query )?(failed|failure|timeout)|servfail|server failure"),
    ("hostunknown", r"host (or domain name )?(unknown|not found)|unknown host|domain (name )?(not found|does not "
                    r"exist|unknown|is not valid)|no such domain|unknown domain|name or service not known|"
                    r"name service error|(mx|dns) (lookup|record|query).{0,20}(fail|not found|error)|"
                    r"dns lookup failure|\bnxdomain|unrouteable mail domain|no mx|host not found|"
                    r"unable to route|no route to domain|invalid domain|domain is not reachable|"
                    r"domain .{0,40}(has no|without) (mx|valid|mail)"),
    ("userunknown", r"user unknown|unknown user|unknown recipient|recipient unknown|no such (user|mailbox|"
                    r"recipient|account|address|local user|person)|(mailbox|account|user|recipient|address|"
                    r"e-?mail address|addressee)( \S+)? (does not|doesn'?t|did not|not) exist|"
                    r"(recipient|user|mailbox|address|account|addressee) (was )?not found|not a valid "
                    r"(mailbox|recipient|user|address)|invalid (recipient|mailbox|address|user|e-?mail)|"
                    r"unknown (or illegal )?(alias|user)|illegal user|user (is )?not (found|known|local)|"
                    r"mailbox unavailable|"
                    r"no mailbox|unrouteable address|undeliverable address|unknown local part|"
                    r"bad destination mailbox|mailbox not available|no such|is not a known user|addressee unknown|"
                    r"(doesn'?t|does not) have an? (\S+ )?account|invalid final delivery|"
                    r"no matches to nameserver|recipient address rejected\.?\s*$|no valid recipients|"
                    r"リストにありません|"
                    r"(could ?n.t|could not|cannot) be found|check (if|that) (the )?address|"
                    r"other recipients in the same domain|"
                    r"not (recognized|recognised)|not our customer|"
                    r"does not have an account|not listed in|unknown address|address unknown|"
                    r"mailbox .{0,40}(unknown|not found|invalid)|retired|no longer (valid|available|active)"),
    ("expired", r"expired|delivery time|retry time|giving up|queue ?time|too long in (the )?queue|"
                r"could not be delivered (within|for|after)|not (been )?delivered (within|for|after)|"
                r"time limit exceeded|maximum time"),
    ("policyviolation", r"polic(y|ies)|not compliant|rfc ?(2822|5322|822|5321)|(invalid|missing|duplicate|bad) "
                        r"(header|message-id)|header .{0,20}(invalid|too long|syntax)|"
                        r"syntax|content (error|rejected)|not accepted|mime|8-?bit|line (too )?long"),
    ("networkerror", r"connection (refused|timed out|reset|lost|closed)|timed? ?out|no route|network|"
                     r"lost connection|unable to connect|could not connect|too many hops|mail loop|"
                     r"loops back|routing loop|conversation with|temporary failure|temporarily|"
                     r"try again|system (error|full|not accepting)|resources|out of memory|mailer.?error"),
)
_COMPILED = tuple((reason, re.compile(pattern, re.I)) for reason, pattern in _TEXT)

# RFC 3463 subject.detail → reason; a missing detail falls back to its subject's row.
_CODES = {
    "1.0": "userunknown", "1.1": "userunknown", "1.2": "hostunknown", "1.3": "userunknown", "1.4": "userunknown",
    "1.6": "hasmoved", "1.7": "blocked", "1.8": "blocked", "1.10": "notaccept",
    "2.1": "suspend", "2.2": "mailboxfull", "2.3": "exceedlimit", "2.4": "undefined",
    "3.1": "mailboxfull", "3.2": "networkerror", "3.4": "exceedlimit", "3.5": "networkerror",
    "4.1": "networkerror", "4.2": "networkerror", "4.3": "networkerror", "4.4": "hostunknown",
    "4.5": "ratelimited", "4.6": "networkerror", "4.7": "expired",
    "5.3": "ratelimited",
    "7.0": "securityerror", "7.1": "blocked", "7.2": "blocked", "7.7": "securityerror", "7.8": "authfailure",
    "7.9": "securityerror", "7.13": "suspend", "7.17": "hasmoved", "7.18": "hasmoved", "7.20": "authfailure",
    "7.21": "authfailure", "7.22": "authfailure", "7.23": "authfailure", "7.24": "authfailure",
    "7.25": "blocked", "7.26": "authfailure", "7.27": "authfailure", "7.28": "ratelimited",
    "1": "undefined", "2": "mailboxfull", "3": "networkerror", "4": "networkerror", "5": "policyviolation",
    "6": "policyviolation", "7": "blocked",
}
# Addresses and links' paths name things, they say nothing of why ("filtered@example.com", "…/reason/#filtered").
_ADDRESSES = re.compile(r"[^\s<>()\[\]:;,\"']+@[^\s<>()\[\]:;,\"']+")
_LINKS = re.compile(r"https?://([^/\s]+)\S*", re.I)  # a link's host may say something (a block list's), its path not
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def reason_of(status: str | None, text: str = "") -> str:
    """The reason of one failure, from its diagnostic text (first) and its RFC 3463 status code."""
    match = _STATUS.search(status or "")
    code = f"{match.group(2)}.{match.group(3)}" if match else None
    said = _said(_LINKS.sub(r"\1", _ADDRESSES.sub(" ", text)))
    if said == "userunknown" and code == "2.0":
        return "filtered"  # "user unknown" of a mailbox whose status is "disabled": a filter's words
    if said is not None:
        return said
    if code is None:
        return "undefined"
    return _CODES.get(code) or _CODES.get(code.partition(".")[0], "undefined")


def _said(text: str) -> str | None:
    """The first reason whose words the text holds."""
    return next((reason for reason, pattern in _COMPILED if pattern.search(text)), None)


def effect_of(reason: str, *, final: bool) -> Effect:
    """What a reason does to the address: hard only when the recipient's and the failure final."""
    if reason in OURS:
        return "ours"
    return "hard" if reason in HARD and final else "soft"
