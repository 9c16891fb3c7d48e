"""The SMS a customer gets after a payment or an operator's code, from the catalogue.

A receipt fits one SMS when it can: if the friendly wording is too long (restricted 15-digit
codes, several codes, long amounts) a compact wording is used, and if even that is too long
the message goes in several parts. A code is never cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from paygo.credit import Quote
from paygo.models import Token
from paygo.texts import formats, sms
from paygo.texts.catalogue import Catalogue
from paygo.texts.placeholders import fill


def render_receipt(
    *,
    language: str,
    account_number: str,
    quote: Quote,
    tokens: Sequence[Token],
    timezone: str,
    texts: Catalogue,
) -> str:
    """The payment receipt: the code(s) to type and what they give."""
    kind = receipt_kind(quote, tokens)
    refund = bool(quote.overpayment) and kind != "overpaid"
    values = receipt_values(
        quote, account_number=account_number, codes=_codes(tokens), timezone=timezone
    )
    candidates = receipt_wordings(texts, language, kind, codes=len(tokens), refund=refund)
    return _first_that_fits(fill(text, values) for text in candidates)


def receipt_kind(quote: Quote, tokens: Sequence[Token]) -> str:
    """Which receipt a credited payment gets (a message of the catalogue's `receipt`)."""
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


def receipt_values(
    quote: Quote, *, account_number: str, codes: str, timezone: str
) -> dict[str, str]:
    """Every value a receipt may show, written for the customer."""
    currency = quote.currency
    return {
        "amount": formats.money(quote.amount, currency),
        "account": account_number,
        "codes": codes,
        "days": formats.days(quote.days),
        "until": formats.date(quote.credit_until, timezone),
        "left": formats.money(quote.deposit_left, currency),
        "minimum": formats.money(quote.minimum, currency),
        "more": formats.money(quote.short_of_next_step, currency),
        "overpaid": formats.money(quote.overpayment, currency),
    }


def receipt_wordings(
    texts: Catalogue, language: str, kind: str, *, codes: int, refund: bool
) -> list[str]:
    """A receipt's wordings, friendliest first: each with its {tokens} text and refund."""
    label = texts.wordings("receipt.codes" if codes > 1 else "receipt.code", language)
    extra = texts.wordings("receipt.refund", language) if refund else ()
    found = []
    for i, text in enumerate(texts.wordings(f"receipt.{kind}", language)):
        # The n-th wording goes with the n-th wording of its parts (or their last one).
        text = text.replace("{tokens}", label[min(i, len(label) - 1)])
        found.append(f"{text} {extra[min(i, len(extra) - 1)]}" if extra else text)
    return found


def render_token_notice(
    *, language: str, account_number: str, tokens: Sequence[Token], texts: Catalogue
) -> str:
    """The SMS carrying an operator's code(s) to the customer, in the order to type them."""
    wordings = texts.wordings(
        "token_notice.many" if len(tokens) > 1 else "token_notice.one", language
    )
    values: Mapping[str, str] = {"account": account_number, "codes": _codes(tokens)}
    return _first_that_fits(fill(text, values) for text in wordings)


def _first_that_fits(candidates: Iterable[str]) -> str:
    texts = list(candidates)
    for text in texts:
        if sms.fits(text):
            return text
    return texts[-1]  # several SMS parts, but every code whole


def _codes(tokens: Sequence[Token]) -> str:
    return ", ".join(formats.code(t.code) for t in tokens)
