"""SMS length rules: GSM-7 (160 characters, 153 per part) or UCS-2 (70, 67 per part).

A message with one character outside the GSM 03.38 alphabet is sent as UCS-2 and
fits less than half as much: the texts catalogue keeps to the GSM-7 alphabet.
"""

from __future__ import annotations

import math

#: The GSM 03.38 basic alphabet (one septet each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters of the extension table: an escape septet plus one, so two each.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

_SINGLE = {"gsm7": 160, "ucs2": 70}
_PER_PART = {"gsm7": 153, "ucs2": 67}  # a concatenation header takes the rest


def encoding(text: str) -> str:
    """Return `gsm7` when every character fits the GSM alphabet, else `ucs2`."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        return "gsm7"
    return "ucs2"


def units(text: str) -> int:
    """Length in the encoding's units (septets for GSM-7, UTF-16 code units for UCS-2)."""
    if encoding(text) == "gsm7":
        return sum(2 if c in GSM7_EXTENDED else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def parts(text: str) -> int:
    """How many SMS parts the text is sent as."""
    enc, length = encoding(text), units(text)
    if length <= _SINGLE[enc]:
        return 1
    return math.ceil(length / _PER_PART[enc])


def capacity(text: str, max_parts: int) -> int:
    """How many units fit in `max_parts` parts in the text's encoding."""
    enc = encoding(text)
    return _SINGLE[enc] if max_parts <= 1 else _PER_PART[enc] * max_parts


def fits(text: str, max_parts: int = 1) -> bool:
    """Whether the text is sent in at most `max_parts` parts."""
    return parts(text) <= max(1, max_parts)


def truncate(text: str, max_parts: int = 1) -> str:
    """Cut the text to fit `max_parts` parts, ending with `...` when cut."""
    if fits(text, max_parts):
        return text
    cut = text
    while cut and not fits(cut + "...", max_parts):
        # Trim roughly to size first, then one character at a time.
        excess = units(cut + "...") - capacity(cut + "...", max_parts)
        cut = cut[: -max(1, excess)].rstrip()
    return cut + "..."
