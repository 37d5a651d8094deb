"""The facts each notice must tell (../shared/notice-content.md), on each stage and day, in every language.

A fact is a catalog sentence: its translation's fixed words (the text between its placeholders) must all be
in the text part or the preheader, and the dates it names must be there as the locale writes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dunning.i18n.catalogs import Catalogs
from dunning.i18n.formats import Formats
from mailcheck.emails import MailcheckEmail

Context = Mapping[str, Any]
_PLACEHOLDER = re.compile(r"%\(\w+\)s")

ONE_PAYMENT = "The button below settles your whole balance in one payment."
SHARED = ("These subscriptions share the same payment method: %(names)s. Their whole balance is settled in one "
          "payment, and the payment method you use to settle it becomes the active one for all of them.")
BANK = ("You pay by bank transfer: please transfer the amount due to the bank account shown on your invoice, "
        "quoting the invoice number. You can also settle the balance online with the link below.")
FOOTER = ("These notices are sent to %(email)s, the billing contact of your account. Please make sure this address "
          "is read, and check your spam folder so that you do not miss one.")


def _card(context: Context) -> bool:
    return context["payment_method"]["type"] == "card"


def _expired(context: Context) -> bool:
    failure = context.get("failure")
    return bool(failure) and bool(failure["code"] == "expired_card")


def _days(n: int) -> Callable[[Context], bool]:
    return lambda context: context.get("days_left") == n


# (notice or "*", when, the sentences that must be there)
FACTS: tuple[tuple[str, Callable[[Context], bool], tuple[str, ...]], ...] = (
    ("*", lambda c: True, (FOOTER,)),
    ("card_charge_failed", lambda c: c["shared_card"], (SHARED,)),
    ("card_charge_failed", lambda c: not c["shared_card"] and _expired(c),
     ("To avoid any interruption, update your card now: the balance is then settled in one payment.",)),
    ("card_charge_failed", lambda c: not c["shared_card"] and not _expired(c), (ONE_PAYMENT,)),
    ("past_due", lambda c: c["shared_card"], (SHARED,)),
    ("past_due", lambda c: not c["shared_card"] and _expired(c),
     ("Once your card is updated, the button below settles your whole balance in one payment.",)),
    ("past_due", lambda c: not c["shared_card"] and not _expired(c), (ONE_PAYMENT,)),
    ("past_due", lambda c: not _card(c), (BANK,)),
    ("past_due", lambda c: bool(c["final_stage"] and c.get("disable_date")),
     ("Unless the balance is settled, your service will be suspended on %(date)s and then cancelled, and its "
      "resources will no longer be available. Your data is deleted %(days)s days after the service ends.",)),
    ("past_due", lambda c: not (c["final_stage"] and c.get("disable_date")),
     ("If the balance remains unpaid, your service will be suspended and then cancelled, and its resources will "
      "no longer be available. Your data is deleted %(days)s days after the service ends.",)),
    ("service_cancelled", lambda c: True,
     ("Your data is deleted %(days)s days after the service ends: it will be permanently deleted on %(date)s.",
      "If you have already paid but your service has not been restored, please contact our support team:")),
    ("service_cancelled", lambda c: not _card(c), (BANK,)),
    ("pending_deletion", _days(0),
     ("Settle the balance today to keep your data.",
      "Your data will be permanently deleted today, %(date)s, and cannot be recovered afterwards.",
      "To keep your data, settle the outstanding balance of %(amount)s today. If you need more time or have a "
      "question, please contact our support team:")),
    ("pending_deletion", _days(1),
     ("Your data will be deleted tomorrow",
      "Your data will be permanently deleted tomorrow, %(date)s, and cannot be recovered afterwards.")),
    ("pending_deletion", lambda c: c["days_left"] > 0,
     ("Settle the balance before %(date)s to keep your data.",
      "To keep your data, settle the outstanding balance of %(amount)s before %(date)s. If you need more time or "
      "have a question, please contact our support team:")),
    ("balance_settled", lambda c: True,
     ("If a service is still disabled after your payment, please contact our support team:",)),
)
# The dates a notice must name (deletion date, the last day before suspension).
DATES = {"service_cancelled": ("deletion_date",), "pending_deletion": ("deletion_date",),
         "past_due": ("disable_date",)}


@dataclass(frozen=True, slots=True)
class FactProblem:
    """A fact missing from one email."""

    email: str
    problem: str


def check_facts(emails: list[MailcheckEmail], locales_dir: Path) -> list[FactProblem]:
    """Every fact each email must carry, in its language; the missing ones."""
    catalogs = Catalogs(locales_dir)
    problems = []
    for email in emails:
        said = " ".join(f"{email.subject}\n{email.preheader}\n{email.text}".split())
        notice = email.name.partition("--")[0]
        for where, when, sentences in FACTS:
            if where in ("*", notice) and when(email.context):
                problems += [FactProblem(email.name, f"missing: {sentence[:70]!r}") for sentence in sentences
                             if not _says(said, catalogs.translations(email.locale).gettext(sentence))]
        formats = Formats(email.locale)
        for key in DATES.get(notice, ()):
            value = email.context.get(key)
            if value and " ".join(formats.date(value, email.context.get("timezone")).split()) not in said:
                problems.append(FactProblem(email.name, f"missing: the {key.replace('_', ' ')}"))
    return problems


def _says(text: str, sentence: str) -> bool:
    """Whether every fixed part of a translated sentence (between its placeholders) is in the text."""
    return all(" ".join(part.split()) in text for part in _PLACEHOLDER.split(sentence) if part.strip())
