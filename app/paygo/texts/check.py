"""Measure every message of the catalogue with the longest values it can be given.

The rule the receipts have always kept: the last (most compact) wording of every message
fits one GSM-7 SMS with the longest amounts, an account number, up to three 15-digit
codes or one 20-digit code, and this install's distributor name and PayBill number.
(Friendlier wordings may be longer: the first that fits is sent.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from paygo import accountnumbers
from paygo.errors import FlowError
from paygo.texts import formats, sms
from paygo.texts.catalogue import RECEIPT_KINDS, Catalogue, read_texts
from paygo.texts.placeholders import fill
from paygo.texts.receipts import receipt_wordings
from paygo.yamldoc import Problem

_ACCOUNT = "9" * accountnumbers.LENGTH
_MONEY = "X" * formats.MONEY
_CODE = formats.code("9" * 20)  # one restricted code of an extended box
_THREE_CODES = ", ".join([formats.code("9" * 15)] * 3)  # three restricted standard codes
_RECEIPT_VALUES = {
    "amount": _MONEY,
    "account": _ACCOUNT,
    "days": "9" * formats.DAYS,
    "until": "X" * formats.DATE,
    "left": _MONEY,
    "minimum": _MONEY,
    "more": _MONEY,
    "overpaid": _MONEY,
}


def check_texts(path: Path, constants: Mapping[str, str]) -> tuple[Catalogue | None, list[Problem]]:
    """Read a catalogue and measure each message; every problem found."""
    texts, problems = read_texts(path)
    if texts is None:
        return None, problems
    for key, lang, text in _longest(texts, constants):
        if not sms.fits(text):
            problems.append(
                Problem(
                    texts.path,
                    f"{key} can be {sms.units(text)} characters with the longest values "
                    "(one SMS holds 160)",
                    language=lang,
                    line=texts.lines.get((key, lang)),
                )
            )
    return texts, problems


def load_texts(path: Path, constants: Mapping[str, str]) -> Catalogue:
    """The catalogue at `path`, checked; FlowError listing every problem."""
    texts, problems = check_texts(path, constants)
    if texts is None or problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise FlowError(f"invalid texts in {path}:\n{lines}", problems=len(problems))
    return texts


def _longest(texts: Catalogue, constants: Mapping[str, str]) -> Iterator[tuple[str, str, str]]:
    """Each message's most compact wording in each language, filled with the longest values."""
    for lang in texts.languages:
        for kind in RECEIPT_KINDS:
            for codes, count, refund in _receipt_cases(kind):
                wording = receipt_wordings(texts, lang, kind, codes=count, refund=refund)[-1]
                yield f"receipt.{kind}", lang, fill(wording, {**_RECEIPT_VALUES, "codes": codes})
        for key, codes in (("token_notice.one", _CODE), ("token_notice.many", _THREE_CODES)):
            values = {"account": _ACCOUNT, "codes": codes}
            yield key, lang, fill(texts.wordings(key, lang)[-1], values)
        date = "28 " + max(texts.months[lang], key=len)
        values = {**constants, "account": _ACCOUNT, "date": date}
        for key in ("reminder.expiry", "reminder.out_of_light"):
            yield key, lang, fill(texts.wordings(key, lang)[-1], values)


def _receipt_cases(kind: str) -> list[tuple[str, int, bool]]:
    """(codes, how many, refund) a receipt of this kind can carry."""
    if kind == "time":
        return [(_CODE, 1, False), (_THREE_CODES, 3, False)]
    if kind == "paid_off":  # the one code that unlocks the box, and what was paid too much
        return [(formats.code("9" * 15), 1, refund) for refund in (False, True)]
    return [("", 0, False)]
