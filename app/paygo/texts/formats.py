"""How values are written for customers: money, days, dates and codes, in one place.

Every screen, reply, receipt and reminder writes its values with these functions, so the
same number of days reads the same on USSD and in an SMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date as Date
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from zoneinfo import ZoneInfo

from paygo.money import format_minor
from paygo.tokens.codec import format_code

#: The longest value each writes (validation measures texts with these).
MONEY = 18  # "KES 999,999,999.99"
DAYS = 8  # "99999.99"
DATE = 10  # "30/11/2026"
_HUNDREDTH = Decimal("0.01")


def money(minor: int, currency: str) -> str:
    """Minor units as people read them: `KES 1,500`, `KES 12.50`."""
    return format_minor(minor, currency)


def days(value: float) -> str:
    """Days as people read them: 3, 12.5, 1.75, 0.33, rounded down to a hundredth.

    Never rounded up, so a customer is never shown time they do not have. The float is
    read as the shortest decimal that is exactly it (0.29, not 0.28999...), so 29 hundredths
    bought stay 0.29, and time left a microsecond short of a hundredth shows one less.
    """
    floored = Decimal(repr(float(value))).quantize(_HUNDREDTH, rounding=ROUND_FLOOR)
    text = f"{floored:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def date(moment: datetime | None, zone: str) -> str:
    """The day of `moment` in the customer's time zone: `30/11/2026` (`-` for none)."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%d/%m/%Y") if moment else "-"


def day_month(day: Date, months: Sequence[str]) -> str:
    """A short date with the month's name in the customer's language: `30 Nov`, `30 nov.`."""
    return f"{day.day} {months[day.month - 1]}"


def code(digits: str) -> str:
    """A keypad code in groups of three: `123 456 789`."""
    return format_code(digits)
