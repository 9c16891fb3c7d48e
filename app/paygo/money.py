"""Money as integer minor units plus an ISO 4217 currency code; Decimal only at the edges."""

from __future__ import annotations

import re
from decimal import Decimal

from paygo.errors import InvalidInput

# Minor-unit exponents for the currencies PAYG distributors bill in (ISO 4217).
EXPONENTS: dict[str, int] = {
    "KES": 2,
    "TZS": 2,
    "UGX": 0,
    "RWF": 0,
    "BIF": 0,
    "ETB": 2,
    "NGN": 2,
    "GHS": 2,
    "ZMW": 2,
    "MWK": 2,
    "MZN": 2,
    "CDF": 2,
    "XOF": 0,
    "XAF": 0,
    "SLE": 2,
    "LRD": 2,
    "USD": 2,
    "EUR": 2,
    "INR": 2,
    "MMK": 2,
    "PKR": 2,
    "BDT": 2,
    "ZAR": 2,
    "SSP": 2,
}
# Plain decimal notation only: "1e3", "NaN" or "1,0,0" are typos, not amounts.
_AMOUNT = re.compile(r"-?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?|-?\.\d+")


def exponent(currency: str) -> int:
    """Return the number of minor-unit digits of a currency, refusing unknown codes."""
    try:
        return EXPONENTS[currency.upper()]
    except KeyError:
        raise InvalidInput(f"unknown currency {currency!r}", currency=currency) from None


def to_minor(amount: str | int | Decimal, currency: str) -> int:
    """Parse a major-unit amount ("150", "1.00", "1,000.00") into integer minor units."""
    if isinstance(amount, Decimal | int) and not isinstance(amount, bool):
        value = Decimal(amount)
        if not value.is_finite():
            raise InvalidInput(f"not an amount: {amount!r}", amount=str(amount))
    else:
        text = str(amount).strip()
        if not _AMOUNT.fullmatch(text):
            raise InvalidInput(
                f"not an amount: {amount!r} (write it like 1500 or 1,500.50)", amount=str(amount)
            )
        value = Decimal(text.replace(",", ""))
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidInput(
            f"{amount} {currency} has more decimals than the currency allows", amount=str(amount)
        )
    return int(scaled)


def format_minor(minor: int, currency: str) -> str:
    """Render minor units for people: `KES 1,500` or `KES 12.50`."""
    exp = exponent(currency)
    value = Decimal(minor).scaleb(-exp)
    if exp and minor % (10**exp):
        return f"{currency} {value:,.{exp}f}"
    return f"{currency} {int(value):,}"
