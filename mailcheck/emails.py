"""The emails mailcheck inspects: every notice × locale × sample scenario, with a real signed settlement link.

Each is wrapped in MIME as a run sends it to a server announcing 8BITMIME (the default,
`delivery.eight_bit`), dated now and signed now.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from dunning.delivery.mime import address_domain, build_message, make_message_id
from dunning.emails.render import Renderer
from dunning.emails.scenarios import load_scenarios
from dunning.i18n.formats import Formats
from dunning.links import settlement_url, update_url
from dunning.settings import LinksSettings, SenderSettings

# A fixed key for the sample links: spam filters read the URL as sent, so it carries a real token.
SAMPLE_KEY = "mailcheck-sample-signing-key-0123456789"


@dataclass(frozen=True, slots=True)
class MailcheckEmail:
    """One rendered email: its name (notice/locale/scenario), its RFC 5322 bytes and its HTML part."""

    name: str
    locale: str
    dir: str
    subject: str
    eml: bytes
    html: str
    foreign_script_names: bool   # the customer's names are written in another script than the language
    text: str = ""
    preheader: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[str, ...] = ()   # the links both parts must offer: the action link and the support page
    contact: str = ""             # the billing contact's address, which the footer names
    units: tuple[str, ...] = ()   # the dates and amounts as written: none may break across lines


def _foreign_script(names: list[str], locale: str) -> bool:
    """Whether a name holds letters of another script than the locale's (Latin, or Arabic for ar)."""
    letters = [c for name in names for c in name if c.isalpha()]
    if locale == "ar":
        return any(c < "\u0600" for c in letters)
    return any(c > "\u024f" for c in letters)


def sample_emails(templates_dir: Path, locales_dir: Path) -> Iterator[MailcheckEmail]:
    """Every scenario in every locale, signed and wrapped in MIME the way a run sends it."""
    renderer = Renderer(templates_dir, locales_dir, cache_dir=False)
    links = LinksSettings(keys=SecretStr(SAMPLE_KEY))
    sender = SenderSettings()
    sent_at = datetime.now(UTC).replace(microsecond=0)   # filters score a Date far from now
    for scenario in sorted(load_scenarios(templates_dir), key=lambda s: s.name):
        context = dict(scenario.context)
        account, method = context["account"]["id"], context["payment_method"]["id"] or "none"
        ids = {"account": account, "payment_method": method,
               "key": f"{scenario.notice}:{account}:{method}:{sent_at:%Y-%m-%d}", "now": sent_at}
        if scenario.notice == "card_expiring":   # its link goes to the payment-method update page
            context["update_url"] = update_url(links, **ids)
        else:
            context["settlement_url"] = settlement_url(links, **ids)
        for locale in sorted(renderer.available_locales):
            email = renderer.render(scenario.notice, locale, context)
            name = f"{scenario.name}/{locale}"
            eml = build_message(email, from_address=sender.from_address, from_name=sender.from_name,
                                reply_to=sender.reply_to, to=[context["account"]["email"]], cc=[],
                                message_id=make_message_id(f"mailcheck:{name}", address_domain(sender.from_address)),
                                date=sent_at, eight_bit=True)
            names = [context["account"]["name"], *(s["name"] for s in context["subscriptions"])]
            action = {"card_expiring": context.get("update_url"), "balance_settled": context["support_url"]}.get(
                scenario.notice, context["settlement_url"])
            yield MailcheckEmail(name, locale, email.dir, email.subject, bytes(eml), email.html,
                                 _foreign_script(names, locale), email.text, email.preheader, context,
                                 tuple(dict.fromkeys([action, context["support_url"]])), context["account"]["email"],
                                 units(context, Formats(email.lang.replace("-", "_"))))


_DATES = (("deletion_date", "long"), ("disable_date", "long"), ("card_end_date", "long"))


def units(context: Mapping[str, Any], formats: Formats) -> tuple[str, ...]:
    """Every date and amount an email writes from its context, as the locale writes it."""
    timezone = context.get("timezone")
    dates = [formats.date(context[key], timezone, style) for key, style in _DATES if context.get(key)]
    dates += [formats.date(invoice["due_date"], timezone, "medium") for invoice in context.get("invoices", [])]
    failure = context.get("failure") or {}
    dates += [formats.date(failure[key], timezone) for key in ("attempted_at", "next_retry_at") if failure.get(key)]
    amounts = [formats.money(invoice["outstanding"], invoice["currency"]) for invoice in context.get("invoices", [])]
    amounts += [formats.money(item["amount"], item["currency"]) for item in context.get("balance", [])]
    return tuple(dict.fromkeys(dates + amounts))
