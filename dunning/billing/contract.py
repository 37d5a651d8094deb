"""The billing-state import contract: validated models for one account line and its children."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.numbers import get_currency_precision, list_currencies
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dunning.billing.addresses import normalize_address
from dunning.errors import ContractViolation
from dunning.i18n.locales import normalize

__all__ = ["parse_moment", "Id", "Text", "DateField", "DateTimeField", "Amount", "Email", "Record", "PaymentMethod",
           "Subscription", "Invoice", "Charge", "Account"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# What an accepted line may hold: whatever passes can be planned, rendered and sent.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
MAX_DIGITS = 18  # significant digits of an amount (a bigint of minor units, exact in every format)
MAX_ID, MAX_TEXT, MAX_EMAIL, MAX_ITEMS = 200, 1_000, 254, 10_000
MAX_URL = 2_048


def _as_date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError(f"not a date (YYYY-MM-DD): {_show(value)}")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a date: {_show(value)}") from None
    if not EARLIEST.date() <= parsed < LATEST.date():
        raise ValueError(f"out of range (1970 to 2099): {_show(value)}")
    return parsed


def parse_moment(value: Any) -> datetime:
    """An RFC 3339 date-time with its offset (`2026-11-20T09:00:00Z`); ValueError says what is wrong."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError(f"not an RFC 3339 date-time: {_show(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an RFC 3339 date-time: {_show(value)}") from None
    if "T" not in value.upper() or parsed.tzinfo is None:
        raise ValueError(f"not an RFC 3339 date-time with an offset: {_show(value)}")
    # The local time first: at year 1 or 9999 an offset would carry the moment out of datetime's range.
    naive = parsed.replace(tzinfo=None)
    if not (EARLIEST.replace(tzinfo=None) < naive < LATEST.replace(tzinfo=None) and EARLIEST <= parsed < LATEST):
        raise ValueError(f"out of range (1970 to 2099): {_show(value)}")
    return parsed


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"must be a decimal string like \"123.45\", not {type(value).__name__} {_show(value)}")
    if len(value) > 2 * MAX_DIGITS or not _DECIMAL.fullmatch(value):
        raise ValueError(f"not a decimal of at most {MAX_DIGITS} digits: {_show(value)}")
    try:
        amount = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern above already excludes these
        raise ValueError(f"not a decimal: {_show(value)}") from None
    if amount < 0:
        raise ValueError(f"must not be negative: {_show(value)}")
    if len(amount.as_tuple().digits) > MAX_DIGITS:
        raise ValueError(f"more than {MAX_DIGITS} significant digits: {_show(value)}")
    return amount


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f'"{text}"' if isinstance(value, str) else text


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_currency(value: str) -> str:
    if value not in _currencies():
        raise ValueError(f"unknown ISO 4217 currency: {_show(value)}")
    return value


def _check_timezone(value: str) -> str:
    if value not in _timezones():
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone: {_show(value)}") from None
    return value


def _check_locale(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*", value) or normalize(value) is None:
        raise ValueError(f"not a BCP 47 locale: {_show(value)}")
    return value


def _check_email(value: str) -> str:
    # Accepted only if it can be sent (as delivery/mime writes it); the value is personal data: not echoed.
    if not _EMAIL.fullmatch(value):
        raise ValueError("not an email address")
    try:
        normalize_address(value)
    except ValueError as exc:
        raise ValueError(f"not an email address: {exc}") from None
    return value


def _check_https(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("not an https:// URL")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Id = Annotated[str, Field(strict=True, max_length=MAX_ID), AfterValidator(_non_empty)]
Text = Annotated[str, Field(strict=True, max_length=MAX_TEXT)]
DateField = Annotated[date, BeforeValidator(_as_date)]
DateTimeField = Annotated[datetime, BeforeValidator(parse_moment)]
Amount = Annotated[Decimal, BeforeValidator(_as_decimal)]
Email = Annotated[str, Field(strict=True, max_length=MAX_EMAIL), AfterValidator(_check_email)]
PaymentUrl = Annotated[str, Field(strict=True, max_length=MAX_URL), AfterValidator(_check_https)]


class Record(BaseModel):
    """Unknown fields are kept aside (model_extra) so the importer can warn about them."""

    model_config = ConfigDict(extra="allow", frozen=True)


class PaymentMethod(Record):
    id: Id
    type: Literal["card", "invoice"]
    brand: Text | None = None
    last4: Annotated[str, Field(strict=True, pattern=r"^\d{4}$")] | None = None
    exp_month: Annotated[int, Field(strict=True, ge=1, le=12)] | None = None
    exp_year: Annotated[int, Field(strict=True, ge=1970, le=2099)] | None = None

    @property
    def expiry_month(self) -> str | None:
        """The month the card expires in, "YYYY-MM", for cards with both expiry fields."""
        if self.type != "card" or self.exp_month is None or self.exp_year is None:
            return None
        return f"{self.exp_year:04d}-{self.exp_month:02d}"


class Subscription(Record):
    id: Id
    name: Text
    payment_method: Id
    status: Literal["active", "past_due", "disabled", "cancelled"]
    cancelled_at: DateTimeField | None = None
    cancel_reason: Literal["non_payment", "customer_request"] | None = None
    data_deleted: Annotated[bool, Field(strict=True)] = False

    @model_validator(mode="after")
    def _cancelled_has_date(self) -> Subscription:
        if self.status == "cancelled" and self.cancelled_at is None:
            raise ValueError("cancelled_at is required when status is cancelled")
        return self


class Invoice(Record):
    id: Id
    subscription: Id
    currency: Annotated[str, Field(strict=True, max_length=3), AfterValidator(_check_currency)]
    total: Amount
    amount_paid: Amount = Decimal(0)
    issued_date: DateField
    due_date: DateField
    status: Literal["open", "paid", "void"]
    payment_url: PaymentUrl | None = None

    @field_validator("total", "amount_paid")
    @classmethod
    def _currency_precision(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        currency = info.data.get("currency")
        exponent = value.as_tuple().exponent
        if currency and isinstance(exponent, int) and -exponent > get_currency_precision(currency):
            raise ValueError(f"{currency} has {get_currency_precision(currency)} decimals, got {value}")
        return value

    @property
    def outstanding(self) -> Decimal:
        return self.total - self.amount_paid

    @property
    def owed(self) -> bool:
        return self.status == "open" and self.outstanding > 0


class Charge(Record):
    id: Id
    invoice: Id
    payment_method: Id
    attempted_at: DateTimeField
    outcome: Literal["succeeded", "failed"]
    failure_code: Text | None = None
    next_retry_at: DateTimeField | None = None


class Account(Record):
    id: Id
    name: Text
    email: Email
    cc: Annotated[list[Email], Field(max_length=50)] = []
    locale: Annotated[str, Field(strict=True, max_length=40), AfterValidator(_check_locale)]
    timezone: Annotated[str, Field(strict=True, max_length=80), AfterValidator(_check_timezone)]
    dunning_paused_until: DateTimeField | None = None
    segment: Annotated[str, Field(strict=True, pattern=r"^[a-z0-9_-]{1,40}$")] | None = None
    payment_methods: Annotated[list[PaymentMethod], Field(max_length=MAX_ITEMS)] = []
    subscriptions: Annotated[list[Subscription], Field(max_length=MAX_ITEMS)] = []
    invoices: Annotated[list[Invoice], Field(max_length=MAX_ITEMS)] = []
    charges: Annotated[list[Charge], Field(max_length=MAX_ITEMS)] = []

    @model_validator(mode="after")
    def _references(self) -> Account:
        _unique_ids(self)
        methods = {pm.id for pm in self.payment_methods}
        subs = {sub.id for sub in self.subscriptions}
        invoice_ids = {inv.id for inv in self.invoices}
        _refs("subscriptions", "payment_method", self.subscriptions, methods, "payment method")
        _refs("invoices", "subscription", self.invoices, subs, "subscription")
        _refs("charges", "invoice", self.charges, invoice_ids, "invoice")
        _refs("charges", "payment_method", self.charges, methods, "payment method")
        return self



def _unique_ids(account: Account) -> None:
    for field in ("payment_methods", "subscriptions", "invoices", "charges"):
        seen: set[str] = set()
        for index, item in enumerate(getattr(account, field)):
            if item.id in seen:
                raise ContractViolation(f"{field}[{index}].id", f"duplicate id {_show(item.id)}")
            seen.add(item.id)


def _refs(field: str, attr: str, items: list[Any], known: set[str], what: str) -> None:
    for index, item in enumerate(items):
        value = getattr(item, attr)
        if value not in known:
            raise ContractViolation(f"{field}[{index}].{attr}", f"unknown {what} {_show(value)}")
