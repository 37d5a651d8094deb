"""What a native copy editor corrects, per language: in catalog strings and in rendered text parts.

Each rule is a pattern and the reason it is refused; `dunning lint` reports every match.
"""

from __future__ import annotations

import re

__all__ = ["CATALOG_RULES", "TEXT_RULES", "catalog_findings", "text_findings"]

Rules = tuple[tuple[re.Pattern[str], str], ...]


def _rules(*pairs: tuple[str, str]) -> Rules:
    return tuple((re.compile(pattern), reason) for pattern, reason in pairs)


_CARD_FIRST = "the brand comes before the word for card"
CATALOG_RULES: dict[str, Rules] = {
    "fr": _rules((r"(?<![\u00a0\u202f])[:;?!](?!//)",
                  "French puts a no-break space (U+00A0) before : ; ? and !"),
                 (r"\bLeur solde\b", "« Leur solde » reads as the subscriptions' owners' balance: say whose"),
                 (r"\bdans 1 jour\b", "write « demain », never « dans 1 jour »")),
    "de": _rules((r"Karte %\(brand\)s", f"{_CARD_FIRST}: „Ihre %(brand)s-Karte“"),
                 (r"offener Betrag ist beglichen", "a settled amount is no longer open: „Ihr Konto ist ausgeglichen“"),
                 (r"\bSaldo\b", "the catalog says „offener Betrag“: do not mix in „Saldo“"),
                 (r"inzwischen fällig", "past due is „überfällig“")),
    "sv": _rules((r"kort %\(brand\)s", f"{_CARD_FIRST}: ”ditt %(brand)s-kort”"),
                 (r"^Sista påminnelsen\b", "a heading or subject says ”Sista påminnelse”")),
    "nl": _rules((r"\bfactuuradres\b", "“factuuradres” is a postal address: the notices go to the billing contact"),
                 (r"\bopgezegd\b", "“opgezegd” says the customer cancelled: we ended it (“beëindigd”)")),
    "ar": _rules((r"^ستحذف", "a subject without vowels reads ستحذف as active: write سيتم حذف"),
                 (r"(?:^|\s)(?:سوِّ|حدِّث|انسخ)\s", "a blunt imperative beside the polite يُرجى: write يُرجى + verbal noun")),
}
# Rendered text parts: what only shows once the values are in.
TEXT_RULES: dict[str, Rules] = {
    "en": _rules((r"\bin 1 day\b", "write “tomorrow”"), (r"\b[A-Z]{3}\d", "a currency code is followed by a space")),
    "fr": _rules((r"\bdans 1 jour\b", "write « demain »"),),
    "de": _rules((r"\bin 1 Tag\b", "write „morgen“"),),
    "sv": _rules((r"\bom 1 dag\b", "write ”i morgon”"),),
    "nl": _rules((r"\bover 1 dag\b", "write “morgen”"),),
}


def _language(locale: str) -> str:
    return locale.replace("-", "_").split("_")[0]


def catalog_findings(locale: str, text: str) -> list[str]:
    """Why a translation in this locale's catalog reads wrong (empty when it reads right)."""
    return [f"{reason}: {match.group(0)!r}" for pattern, reason in CATALOG_RULES.get(_language(locale), ())
            for match in [pattern.search(text)] if match]


def text_findings(locale: str, text: str) -> list[str]:
    """Why a rendered text part reads wrong in this locale."""
    return [f"{reason}: {match.group(0)!r}" for pattern, reason in TEXT_RULES.get(_language(locale), ())
            for match in [pattern.search(text)] if match]
