"""The SMS a customer gets after a payment or an operator token, in their language.

A receipt fits one SMS when it can: if the friendly wording is too long (restricted 15-digit
codes, several codes, long amounts) a compact wording is used, and if even that is too long
the message goes in several parts. A code is never cut.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from paygo.credit import Quote
from paygo.messaging import sms
from paygo.models import Token
from paygo.money import format_minor
from paygo.tokens.codec import format_code

# Each key: the friendly wording first, then a compact one for when it does not fit.
_TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "time": (
            "Thank you! {amount} received, acc {account}. {tokens} ({days} days, "
            "light until {until}).",
            "Acc {account}: {amount} paid. {tokens} ({days} days, to {until}).",
        ),
        "deposit": (
            "Thank you! {amount} received, acc {account}. Pay {left} more deposit to "
            "switch your light on.",
        ),
        "activated": (
            "Thank you! {amount} received, acc {account}. Your deposit is paid: "
            "pay {more} more for your first code.",
        ),
        "minimum": (
            "Thank you! {amount} received, acc {account}. Minimum payment is "
            "{minimum}; it is kept and added to your next payment.",
        ),
        "short": (
            "Thank you! {amount} received, acc {account}. It is kept on your account: "
            "pay {more} more to get a code.",
        ),
        "paid_off": (
            "Congratulations! Acc {account} is fully paid. Unlock code: {codes}. "
            "The system is yours.",
            "Acc {account} is fully paid! Unlock code: {codes}.",
        ),
        "refund": (" {overpaid} overpaid will be refunded.", " Refund due: {overpaid}."),
        "overpaid": (
            "{amount} received for acc {account}, which is already paid off. It will be refunded.",
        ),
        "one": ("Token: {codes}",),
        "many": ("Tokens, type in this order: {codes}", "Tokens in order: {codes}"),
        "notice": ("Acc {account}: your new code is {codes}. Type it on your solar box keypad.",),
        "notice_many": (
            "Acc {account}: your new codes are {codes}. Type them on your solar "
            "box keypad in this order.",
            "Acc {account}: type these codes in order: {codes}",
        ),
    },
    "sw": {
        "time": (
            "Asante! {amount} imepokelewa, akaunti {account}. {tokens} (siku {days}, "
            "hadi {until}).",
            "Akaunti {account}: {amount}. {tokens} (siku {days}, hadi {until}).",
        ),
        "deposit": (
            "Asante! {amount} imepokelewa, akaunti {account}. Lipa {left} zaidi ya "
            "amana kuwasha taa.",
        ),
        "activated": (
            "Asante! {amount} imepokelewa, akaunti {account}. Amana imelipwa: "
            "lipa {more} zaidi kupata tokeni ya kwanza.",
        ),
        "minimum": (
            "Asante! {amount} imepokelewa, akaunti {account}. Malipo ya chini ni "
            "{minimum}; yatahifadhiwa na kuongezwa kwa malipo yajayo.",
        ),
        "short": (
            "Asante! {amount} imepokelewa, akaunti {account}. Imehifadhiwa: lipa "
            "{more} zaidi kupata tokeni.",
        ),
        "paid_off": (
            "Hongera! Akaunti {account} imelipwa yote. Tokeni ya kufungua: {codes}. Mfumo ni wako.",
            "Akaunti {account} imelipwa yote! Tokeni: {codes}.",
        ),
        "refund": (" {overpaid} ya ziada itarudishwa.", " Utarudishiwa {overpaid}."),
        "overpaid": ("{amount} imepokelewa kwa akaunti {account} iliyokwisha lipwa. Itarudishwa.",),
        "one": ("Tokeni: {codes}",),
        "many": ("Tokeni, andika kwa mpangilio huu: {codes}", "Tokeni kwa mpangilio: {codes}"),
        "notice": ("Akaunti {account}: tokeni yako mpya ni {codes}. Iandike kwenye kifaa chako.",),
        "notice_many": (
            "Akaunti {account}: tokeni zako mpya ni {codes}. Ziandike kwenye "
            "kifaa chako kwa mpangilio huu.",
            "Akaunti {account}: andika tokeni hizi kwa mpangilio: {codes}",
        ),
    },
    "fr": {
        "time": (
            "Merci! {amount} recu, compte {account}. {tokens} ({days} jours, jusqu'au {until}).",
            "Compte {account}: {amount}. {tokens} ({days} j, au {until}).",
        ),
        "deposit": (
            "Merci! {amount} recu, compte {account}. Payez encore {left} d'acompte pour allumer.",
        ),
        "activated": (
            "Merci! {amount} recu, compte {account}. Acompte paye: payez encore "
            "{more} pour votre premier code.",
        ),
        "minimum": (
            "Merci! {amount} recu, compte {account}. Le paiement minimum est "
            "{minimum}; il est garde pour le prochain paiement.",
        ),
        "short": (
            "Merci! {amount} recu, compte {account}. Montant garde: payez encore "
            "{more} pour recevoir un code.",
        ),
        "paid_off": (
            "Felicitations! Le compte {account} est paye. Code de deblocage: "
            "{codes}. Le systeme est a vous.",
            "Compte {account} paye! Code de deblocage: {codes}.",
        ),
        "refund": (" {overpaid} de trop vous sera rembourse.", " A rembourser: {overpaid}."),
        "overpaid": ("{amount} recu pour le compte {account}, deja paye. Il vous sera rembourse.",),
        "one": ("Code: {codes}",),
        "many": ("Codes, a taper dans cet ordre: {codes}", "Codes dans l'ordre: {codes}"),
        "notice": (
            "Compte {account}: votre nouveau code est {codes}. Tapez-le sur votre boitier.",
        ),
        "notice_many": (
            "Compte {account}: vos nouveaux codes sont {codes}. Tapez-les sur "
            "votre boitier dans cet ordre.",
            "Compte {account}: tapez ces codes dans l'ordre: {codes}",
        ),
    },
}


def render_receipt(
    *, language: str, account_number: str, quote: Quote, tokens: Sequence[Token], timezone: str
) -> str:
    """The payment receipt: the code(s) to type and what they give."""
    texts = _TEXTS.get(language, _TEXTS["en"])
    values = {
        "amount": format_minor(quote.amount, quote.currency),
        "account": account_number,
        "codes": _codes(tokens),
        "days": days_text(quote.days),
        "until": _date(quote.credit_until, timezone),
        "left": format_minor(quote.deposit_left, quote.currency),
        "minimum": format_minor(quote.minimum, quote.currency),
        "more": format_minor(quote.short_of_next_step, quote.currency),
        "overpaid": format_minor(quote.overpayment, quote.currency),
    }
    key = _receipt_kind(quote, tokens)
    refund = texts["refund"] if quote.overpayment and key != "overpaid" else ("",)
    label = texts["many" if len(tokens) > 1 else "one"]
    wordings = [
        (text, label[min(i, len(label) - 1)], refund[min(i, len(refund) - 1)])
        for i, text in enumerate(texts[key])
    ]
    return _first_that_fits(
        text.format(**values, tokens=tokens_label.format(**values)) + extra.format(**values)
        for text, tokens_label, extra in wordings
    )


def _receipt_kind(quote: Quote, tokens: Sequence[Token]) -> str:
    if quote.pays_off:
        return "paid_off"
    if quote.counted == 0 and quote.overpayment:
        return "overpaid"
    if tokens:
        return "time"
    if quote.deposit_left:
        return "deposit"
    if quote.below_minimum:
        return "minimum"
    return "activated" if quote.activates and quote.deposit_part else "short"


def render_token_notice(*, language: str, account_number: str, tokens: Sequence[Token]) -> str:
    """The SMS carrying an operator's token(s) to the customer, in the order to type them."""
    texts = _TEXTS.get(language, _TEXTS["en"])
    wordings = texts["notice_many" if len(tokens) > 1 else "notice"]
    return _first_that_fits(
        text.format(account=account_number, codes=_codes(tokens)) for text in wordings
    )


def _first_that_fits(candidates: Iterable[str]) -> str:
    texts = list(candidates)
    for text in texts:
        if sms.fits(text):
            return text
    return texts[-1]  # several SMS parts, but every code whole


def _codes(tokens: Sequence[Token]) -> str:
    return ", ".join(format_code(t.code) for t in tokens)


def days_text(days: float) -> str:
    """Days as people read them: 3, 1.75, 0.33 (never rounded up)."""
    if days == int(days):
        return str(int(days))
    hundredths = math.floor(round(days * 100, 6))  # round() first: 0.29 * 100 is 28.999...
    return f"{hundredths / 100:.2f}".rstrip("0").rstrip(".")


def _date(moment: datetime | None, timezone: str) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(timezone)).strftime("%d/%m/%Y")
