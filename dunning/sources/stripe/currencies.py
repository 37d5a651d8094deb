"""Stripe's minor units: its own lists of zero- and three-decimal currencies (the `stripe` library has none)."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["ZERO_DECIMAL", "THREE_DECIMAL", "exponent", "major_units"]

# Stripe's documentation, "Supported currencies": amounts in these are whole units.
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
                          "VUV", "XAF", "XOF", "XPF"})
# Amounts in thousandths (the last digit always 0).
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Every other currency, ISK, HUF and TWD included, is given in hundredths by the API.


def exponent(currency: str) -> int:
    """How many decimals Stripe's integer amounts in this currency carry."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def major_units(amount: int, currency: str) -> str:
    """A Stripe amount as the contract's decimal string: JPY 1500 → "1500", EUR 2500 → "25.00"."""
    return str(Decimal(amount).scaleb(-exponent(currency)))
