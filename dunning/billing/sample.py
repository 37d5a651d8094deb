"""Realistic sample billing state: many locales, time zones, currencies, and every notice situation."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import IO, Any, Literal
from zoneinfo import ZoneInfo

__all__ = ["Mix", "PROFILES", "PLANS", "FAILURES", "BRANDS", "WINDOW_HOURS", "SEGMENT", "generate", "write_jsonl",
           "DUE_SITUATIONS", "SITUATIONS", "QUIET_SITUATIONS", "as_of_default"]

Mix = Literal["mixed", "all-due", "none-due"]

# (locale, time zone, currency, company name) — names exercise escaping, emoji and right-to-left script.
PROFILES = (
    ("fr-FR", "Europe/Paris", "EUR", "Contoso SARL"),
    ("sv-SE", "Europe/Stockholm", "SEK", "Åkesson & Björk AB"),
    ("nl-NL", "Europe/Amsterdam", "EUR", "Van der Berg B.V."),
    ("de-DE", "Europe/Berlin", "EUR", "Müller <Technik> GmbH"),
    ("en-US", "America/Los_Angeles", "USD", "Fabrikam \"Cloud\" Inc. 🚀"),
    ("en-US", "America/New_York", "USD", "Northwind Traders"),
    ("en-GB", "Europe/London", "GBP", "O'Brien & Sons Ltd"),
    ("ar-EG", "Africa/Cairo", "EGP", "شركة النيل للبرمجيات"),
    ("ja-JP", "Asia/Tokyo", "JPY", "株式会社サンプル"),
    ("pt-BR", "America/Sao_Paulo", "BRL", "Soluções Ágeis Ltda"),
    ("en-NZ", "Pacific/Auckland", "NZD", "Kiwi Analytics Ltd"),
    ("fr-CA", "America/Toronto", "CAD", "Érable Numérique Inc."),
)
PLANS = ("Starter", "Team", "Business", "Enterprise", "Pay as you go", "Storage add-on")
FAILURES = ("card_declined", "expired_card", "insufficient_funds", "do_not_honor", "processing_error",
            "lost_card")
BRANDS = ("visa", "mastercard", "amex")
WINDOW_HOURS = range(9, 19)
SEGMENT = "key-accounts"  # the sample's segment; the shipped settings have no section for it (defaults)


def generate(count: int, as_of: datetime, *, seed: int = 7, mix: Mix = "mixed",
             in_window: bool = True, settled: bool = False) -> Iterator[dict[str, Any]]:
    """`count` accounts as contract dicts, dated relative to as_of.

    settled: the same accounts once the payments of the "settles" situations came in (their invoices
    paid), for a second run that confirms them with balance_settled."""
    rng = random.Random(seed)
    profiles = [p for p in PROFILES if _local_hour(p[1], as_of) in WINDOW_HOURS] if in_window else []
    profiles = profiles or list(PROFILES)
    situations = {"mixed": SITUATIONS, "all-due": DUE_SITUATIONS, "none-due": QUIET_SITUATIONS}[mix]
    for index in range(count):
        profile = profiles[index % len(profiles)]
        situation = situations[index % len(situations)]
        yield _account(index, profile, situation, as_of, rng, settled)


def write_jsonl(out: IO[str], accounts: Iterator[dict[str, Any]]) -> int:
    """Write accounts as JSON Lines; returns how many."""
    written = 0
    for account in accounts:
        out.write(json.dumps(account, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        written += 1
    return written


def _local_hour(zone: str, moment: datetime) -> int:
    return moment.astimezone(ZoneInfo(zone)).hour


class _Builder:
    """Accumulates one account's children with consistent ids."""

    def __init__(self, account_id: str, currency: str, as_of: datetime, rng: random.Random,
                 settled: bool = False) -> None:
        self.id, self.currency, self.as_of, self.rng, self.settled = account_id, currency, as_of, rng, settled
        self.extra: dict[str, object] = {}  # account fields: pause, segment
        self.methods: list[dict[str, Any]] = []
        self.subs: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self.charges: list[dict[str, Any]] = []

    def card(self, expires_months_ahead: int | None = None) -> str:
        """A card; by default one expiring a year or more from now (no card_expiring of its own)."""
        pm = {"id": f"pm_{self.id}_{len(self.methods) + 1}", "type": "card",
              "brand": self.rng.choice(BRANDS), "last4": f"{self.rng.randrange(10000):04d}",
              "exp_month": self.rng.randint(1, 12), "exp_year": self.as_of.year + self.rng.randint(2, 5)}
        if expires_months_ahead is not None:
            index = self.as_of.year * 12 + self.as_of.month - 1 + expires_months_ahead
            pm["exp_year"], pm["exp_month"] = index // 12, index % 12 + 1
        self.methods.append(pm)
        return str(pm["id"])

    def pay_all(self) -> None:
        """Every invoice paid in full, the last by a charge an hour ago (card groups)."""
        for invoice in self.invoices:
            invoice["status"], invoice["amount_paid"] = "paid", invoice["total"]
        cards = [m["id"] for m in self.methods if m["type"] == "card"]
        if cards and self.invoices:
            self.charge(self.invoices[-1]["id"], cards[0], 1, outcome="succeeded")

    def bank_transfer(self) -> str:
        pm = {"id": f"pm_{self.id}_{len(self.methods) + 1}", "type": "invoice"}
        self.methods.append(pm)
        return str(pm["id"])

    def subscription(self, method: str, status: str = "active", **extra: object) -> str:
        sub = {"id": f"sub_{self.id}_{len(self.subs) + 1}", "name": self.rng.choice(PLANS),
               "payment_method": method, "status": status, **extra}
        self.subs.append(sub)
        return str(sub["id"])

    def invoice(self, sub: str, due_days_ago: int, *, status: str = "open", paid: str = "0",
                currency: str | None = None) -> str:
        currency = currency or self.currency
        due = self.as_of.date() - timedelta(days=due_days_ago)
        inv = {"id": f"inv_{self.id}_{len(self.invoices) + 1}", "subscription": sub, "currency": currency,
               "total": _amount(self.rng, currency), "amount_paid": paid,
               "issued_date": (due - timedelta(days=14)).isoformat(), "due_date": due.isoformat(),
               "status": status}
        self.invoices.append(inv)
        return inv["id"]

    def charge(self, invoice: str, method: str, hours_ago: float, outcome: str = "failed") -> None:
        at = self.as_of - timedelta(hours=hours_ago)
        charge = {"id": f"ch_{self.id}_{len(self.charges) + 1}", "invoice": invoice, "payment_method": method,
                  "attempted_at": _rfc3339(at), "outcome": outcome}
        if outcome == "failed":
            charge["failure_code"] = self.rng.choice(FAILURES)
            charge["next_retry_at"] = _rfc3339(at + timedelta(days=3))
        self.charges.append(charge)


def _amount(rng: random.Random, currency: str) -> str:
    if currency == "JPY":
        return str(rng.randrange(500, 200000, 100))
    return str(Decimal(rng.randrange(900, 250000)) / 100)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _paid(b: _Builder) -> None:
    card = b.card()
    sub = b.subscription(card)
    inv = b.invoice(sub, 20, status="paid", paid="0")
    b.invoices[-1]["amount_paid"] = b.invoices[-1]["total"]
    b.charge(inv, card, 20 * 24, outcome="succeeded")
    b.invoice(sub, -10)  # next invoice issued, not yet due


def _card_failed(b: _Builder) -> None:
    card = b.card()
    sub = b.subscription(card)
    inv = b.invoice(sub, 0)
    b.charge(inv, card, 5)


def _past_due(stage_days: int) -> Callable[[_Builder], None]:
    def build(b: _Builder) -> None:
        card = b.card()
        sub = b.subscription(card, "past_due")
        inv = b.invoice(sub, stage_days)
        b.charge(inv, card, stage_days * 24 + 6)
    build.__name__ = f"_past_due_{stage_days}"
    return build


def _shared_card_two_currencies(b: _Builder) -> None:
    card = b.card()
    first, second = b.subscription(card, "past_due"), b.subscription(card, "past_due")
    b.invoice(first, 8)
    b.invoice(second, 3, currency="USD" if b.currency != "USD" else "EUR")
    b.charge(b.invoices[0]["id"], card, 8 * 24)


def _bank_transfer_past_due(b: _Builder) -> None:
    method = b.bank_transfer()
    sub = b.subscription(method, "past_due")
    b.invoice(sub, 15)
    invoice = b.invoices[-1]
    # A partial payment of a tenth, in the currency's own decimals.
    total = Decimal(invoice["total"])
    invoice["amount_paid"] = str((total / 10).quantize(total))


def _cancelled(days_ago: int) -> Callable[[_Builder], None]:
    def build(b: _Builder) -> None:
        card = b.card()
        at = _rfc3339(b.as_of - timedelta(days=days_ago, hours=2))
        sub = b.subscription(card, "cancelled", cancelled_at=at, cancel_reason="non_payment")
        b.invoice(sub, days_ago + 30)
    build.__name__ = f"_cancelled_{days_ago}"
    return build


def _customer_request(b: _Builder) -> None:
    card = b.card()
    at = _rfc3339(b.as_of - timedelta(days=2))
    b.subscription(card, "cancelled", cancelled_at=at, cancel_reason="customer_request")


def _data_deleted(b: _Builder) -> None:
    card = b.card()
    at = _rfc3339(b.as_of - timedelta(days=95))
    sub = b.subscription(card, "cancelled", cancelled_at=at, cancel_reason="non_payment", data_deleted=True)
    b.invoice(sub, 125)


def _card_expiring(subscriptions: int) -> Callable[[_Builder], None]:
    """A card that stops working at the end of this month: stage 1, or 2 in the month's last week."""
    def build(b: _Builder) -> None:
        card = b.card(expires_months_ahead=0)
        for _ in range(subscriptions):
            b.subscription(card)
    build.__name__ = f"_card_expiring_{subscriptions}"
    return build


def _expiring_later(b: _Builder) -> None:
    """A card expiring next month, within about 60 days and before its first stage: nothing due yet."""
    card = b.card(expires_months_ahead=1)
    _paid_history(b, b.subscription(card), card)


def _paused(b: _Builder) -> None:
    """A past-due account whose dunning is paused (a dispute) for ten more days."""
    _past_due(7)(b)
    b.extra["dunning_paused_until"] = _rfc3339(b.as_of + timedelta(days=10))


def _segmented(b: _Builder) -> None:
    _past_due(1)(b)
    b.extra["segment"] = SEGMENT


def _settles_after_card_failure(b: _Builder) -> None:
    """A card failure; with settled=True, paid since: balance_settled answers the failure notice."""
    _card_failed(b)
    if b.settled:
        b.pay_all()


def _settles_after_final_past_due(b: _Builder) -> None:
    """An invoice payer at the final past_due stage; with settled=True, paid by bank transfer since."""
    method = b.bank_transfer()
    b.invoice(b.subscription(method, "past_due"), 15)
    if b.settled:
        b.pay_all()


def _paid_history(b: _Builder, sub: str, card: str) -> None:
    inv = b.invoice(sub, 20, status="paid")
    b.invoices[-1]["amount_paid"] = b.invoices[-1]["total"]
    b.charge(inv, card, 20 * 24, outcome="succeeded")


DUE_SITUATIONS: tuple[Callable[[_Builder], None], ...] = (
    _card_failed, _past_due(1), _past_due(7), _past_due(14), _shared_card_two_currencies,
    _bank_transfer_past_due, _cancelled(1), _cancelled(62), _cancelled(84), _cancelled(89))
SITUATIONS = DUE_SITUATIONS + (_paid, _paid, _paid, _customer_request, _data_deleted, _card_expiring(1),
                               _card_expiring(3), _paused, _segmented, _settles_after_card_failure,
                               _settles_after_final_past_due)
# Nothing due: paid accounts, 5% with a card expiring within two months (before its first stage), 2% paused
# while in dunning (the benchmark's no-op mix).
QUIET_SITUATIONS: tuple[Callable[[_Builder], None], ...] = (_paid,) * 93 + (_expiring_later,) * 5 + (_paused,) * 2


def _account(index: int, profile: tuple[str, str, str, str], situation: Callable[[_Builder], None],
             as_of: datetime, rng: random.Random, settled: bool = False) -> dict[str, Any]:
    locale, zone, currency, company = profile
    account_id = f"acct_{index + 1:07d}"
    builder = _Builder(account_id, currency, as_of, rng, settled)
    situation(builder)
    domain = f"customer{index + 1}.example"
    account = {"id": account_id, "name": company, "email": f"billing@{domain}", "locale": locale,
               "timezone": zone, **builder.extra, "payment_methods": builder.methods,
               "subscriptions": builder.subs, "invoices": builder.invoices, "charges": builder.charges}
    if index % 4 == 0:
        account["cc"] = [f"finance@{domain}"]
    return account


def as_of_default() -> datetime:
    """Now, to the second, in UTC."""
    return datetime.now(UTC).replace(microsecond=0)
