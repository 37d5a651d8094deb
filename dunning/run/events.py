"""One log event for each email whose outcome is not `sent`, and for each recipient newly refused.

Events name records by their ids (email, account, notice) and a recipient by its place among the
email's recipients (To, then Cc), never by its address.
"""

from __future__ import annotations

import logging

from dunning import ledger
from dunning.logs import mask_addresses

__all__ = ["log_result"]

log = logging.getLogger("dunning.run")
LEVELS = {"retry": logging.INFO, "failed": logging.WARNING, "unknown": logging.WARNING}


def log_result(claim: ledger.Claim, result: ledger.Result) -> None:
    """Log what became of one email unless it was sent, and each recipient this attempt refused."""
    if result.status == "sent" and not result.refused:
        return
    ids = {"email_id": claim.email_id, "account": claim.account, "notice": claim.notice}
    earlier = claim.refused
    recipients = [*claim.payload["to"], *claim.payload["cc"]] if result.refused else []
    for address, refusal in (result.refused or {}).items():
        if address in earlier:
            continue
        code = refusal[0] if refusal else None
        place = recipients.index(address) + 1 if address in recipients else None
        log.info("email %s: recipient %s refused (%s)", claim.email_id, place, code,
                 extra={"event": "recipient_refused", "recipient": place, "code": code, **ids})
    if result.status == "sent":
        return
    reply = mask_addresses(result.error or result.reply)
    log.log(LEVELS.get(result.status, logging.WARNING), "email %s: %s: %s", claim.email_id, result.status, reply,
            extra={"event": f"email_{result.status}", "status": result.status, "code": result.code,
                   "reply": reply, **ids})
