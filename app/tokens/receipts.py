"""The SMS a customer gets after a payment, in their language, within one SMS."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from app.credit import Quote
from app.models import Token
from app.money import format_minor
from app.tokens.codec import format_code

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "time": "Thank you! {amount} received, acc {account}. Token: {codes} ({days} days, "
                "light until {until}).",
        "deposit": "Thank you! {amount} received, acc {account}. Pay {left} more deposit to "
                   "switch your light on.",
        "minimum": "Thank you! {amount} received, acc {account}. Minimum payment is {minimum}; "
                   "it is kept and added to your next payment.",
        "paid_off": "Congratulations! Acc {account} is fully paid. Unlock code: {codes}. "
                    "The system is yours.",
        "refund": " {overpaid} overpaid will be refunded.",
        "overpaid": "{amount} received for acc {account}, which is already paid off. "
                    "It will be refunded.",
    },
    "sw": {
        "time": "Asante! {amount} imepokelewa, akaunti {account}. Tokeni: {codes} (siku {days}, "
                "hadi {until}).",
        "deposit": "Asante! {amount} imepokelewa, akaunti {account}. Lipa {left} zaidi ya "
                   "amana kuwasha taa.",
        "minimum": "Asante! {amount} imepokelewa, akaunti {account}. Malipo ya chini ni "
                   "{minimum}; yatahifadhiwa na kuongezwa kwa malipo yajayo.",
        "paid_off": "Hongera! Akaunti {account} imelipwa yote. Tokeni ya kufungua: {codes}. "
                    "Mfumo ni wako.",
        "refund": " {overpaid} ya ziada itarudishwa.",
        "overpaid": "{amount} imepokelewa kwa akaunti {account} iliyokwisha lipwa. "
                    "Itarudishwa.",
    },
    "fr": {
        "time": "Merci! {amount} recu, compte {account}. Code: {codes} ({days} jours, "
                "jusqu'au {until}).",
        "deposit": "Merci! {amount} recu, compte {account}. Payez encore {left} d'acompte "
                   "pour allumer.",
        "minimum": "Merci! {amount} recu, compte {account}. Le paiement minimum est {minimum}; "
                   "il est garde pour le prochain paiement.",
        "paid_off": "Felicitations! Le compte {account} est paye. Code de deblocage: {codes}. "
                    "Le systeme est a vous.",
        "refund": " {overpaid} de trop vous sera rembourse.",
        "overpaid": "{amount} recu pour le compte {account}, deja paye. Il vous sera "
                    "rembourse.",
    },
}


def render_receipt(*, language: str, account_number: str, quote: Quote,
                   tokens: Sequence[Token], timezone: str) -> str:
    """The payment receipt: the code(s) to type and what they give."""
    texts = _TEXTS.get(language, _TEXTS["en"])
    values = {
        "amount": format_minor(quote.amount, quote.currency), "account": account_number,
        "codes": ", ".join(format_code(t.code) for t in tokens),
        "days": _days(quote.days), "until": _date(quote.credit_until, timezone),
        "left": format_minor(quote.deposit_left, quote.currency),
        "minimum": format_minor(quote.minimum, quote.currency),
        "overpaid": format_minor(quote.overpayment, quote.currency),
    }
    if quote.pays_off:
        key = "paid_off"
    elif quote.counted == 0 and quote.overpayment:
        return texts["overpaid"].format(**values)
    elif tokens:
        key = "time"
    elif quote.deposit_left:
        key = "deposit"
    else:
        key = "minimum"
    text = texts[key].format(**values)
    if quote.overpayment and quote.counted:
        text += texts["refund"].format(**values)
    return text


def _days(days: float) -> str:
    return str(int(days)) if days == int(days) else f"{days:.1f}"


def _date(moment: datetime | None, timezone: str) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(timezone)).strftime("%d/%m/%Y")
