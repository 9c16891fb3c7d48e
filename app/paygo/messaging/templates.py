"""Reminder texts in the customers' languages (en, sw, fr), each within one GSM-7 SMS.

Texts keep to the GSM 03.38 alphabet (é and è are in it; û, ê and ç are not), so one
SMS holds 160 characters; tests render every template with long values to prove it.
"""

from __future__ import annotations

from datetime import date

from paygo.messaging import sms

LANGUAGES = ("en", "sw", "fr")

TEMPLATES: dict[str, dict[str, str]] = {
    "expiry": {
        "en": "{distributor}: your light credit ends on {date}. Pay to PayBill {paybill}, "
        "account {account}, to keep your light on.",
        "sw": "{distributor}: salio la taa yako linaisha {date}. Lipa kwa PayBill {paybill}, "
        "akaunti {account}, ili taa iendelee kuwaka.",
        "fr": "{distributor}: votre crédit lumière finit le {date}. Payez au PayBill "
        "{paybill}, compte {account}, pour garder la lumière.",
    },
    "out_of_light": {
        "en": "{distributor}: you are out of light since {date}. Pay to PayBill {paybill}, "
        "account {account}, to get your light back.",
        "sw": "{distributor}: taa yako imezimika tangu {date}. Lipa kwa PayBill {paybill}, "
        "akaunti {account}, ili upate mwanga tena.",
        "fr": "{distributor}: votre lumière est éteinte depuis le {date}. Payez au PayBill "
        "{paybill}, compte {account}, pour la rallumer.",
    },
}

MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "sw": ("Jan", "Feb", "Mac", "Apr", "Mei", "Jun", "Jul", "Ago", "Sep", "Okt", "Nov", "Des"),
    # "aout" without its circumflex (allowed since the 1990 spelling reform): û is not GSM-7.
    "fr": (
        "janv.",
        "févr.",
        "mars",
        "avr.",
        "mai",
        "juin",
        "juil.",
        "aout",
        "sept.",
        "oct.",
        "nov.",
        "déc.",
    ),
}


def language(preferred: str | None, default: str = "en") -> str:
    """The customer's language when we have texts in it, else the default (else English)."""
    for candidate in (preferred, default):
        if candidate in LANGUAGES:
            return candidate
    return "en"


def format_date(day: date, lang: str) -> str:
    """A short date in the language: `30 Nov`, `30 Des`, `30 nov.`."""
    return f"{day.day} {MONTHS[language(lang)][day.month - 1]}"


def render(kind: str, lang: str, *, max_parts: int = 1, **values: str) -> str:
    """Fill a template in the customer's language, cut to fit `max_parts` SMS parts."""
    text = TEMPLATES[kind][language(lang)].format(**values)
    return sms.truncate(text, max_parts)
