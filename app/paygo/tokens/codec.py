"""Fast, pure OpenPAYGO Token generation (no Flask, no database).

Bit-identical to ``openpaygo.generate_token`` (0.6.x) for ADD_TIME, SET_TIME, DISABLE_PAYG and
COUNTER_SYNC tokens, in standard (9-digit) and extended (12-digit) mode, with or without the
restricted digit set (digits 1-4 only). The reference walks a SipHash-2-4 chain in pure Python,
one hash per count step; here each step is one call to the C ``siphashc`` package (same byte order
as the reference's ``siphash`` package) inside a tight loop.

How a token is made (the reference algorithm):
  * the value (raw, i.e. days x time divider) is added to the last 3 digits (6 when extended) of
    the starting code, modulo 1000 (1,000,000): this is the token's *base*;
  * the starting code with that base is hashed ``new_count`` times;
  * the last 3 (6) digits of the result are replaced by the base again.

The chain therefore depends on the value: a device decodes by trying each count for the base it
reads in the token (see ``matching_counts``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import siphashc

__all__ = [
    "DISABLE_VALUE",
    "MAX_COUNT_JUMP",
    "MAX_COUNT_JUMP_SYNC",
    "MAX_EXTENDED_VALUE",
    "MAX_OLDER_ADD_TIME",
    "MAX_STANDARD_VALUE",
    "SYNC_VALUE",
    "DeviceCodeParams",
    "TokenKind",
    "code_to_number",
    "encode_at",
    "format_code",
    "generate",
    "matching_counts",
    "next_count",
    "normalize_code",
    "starting_code_from_key",
    "token_value",
]

MAX_STANDARD_VALUE: Final = 995
"""Largest raw value of a standard ADD_TIME / SET_TIME token."""
MAX_EXTENDED_VALUE: Final = 999_999
"""Largest raw value of an extended (12-digit) ADD_TIME / SET_TIME token."""
DISABLE_VALUE: Final = 998
"""Raw value carried by a DISABLE_PAYG token."""
SYNC_VALUE: Final = 999
"""Raw value carried by a COUNTER_SYNC token."""
MAX_COUNT_JUMP: Final = 64
"""A device accepts tokens up to this many counts above its own count."""
MAX_COUNT_JUMP_SYNC: Final = 100
"""The same window for standard COUNTER_SYNC tokens."""
MAX_OLDER_ADD_TIME: Final = 16
"""Unused ADD_TIME tokens less than this many counts below the device count are accepted once."""

STANDARD_DIGITS: Final = 9
EXTENDED_DIGITS: Final = 12
RESTRICTED_STANDARD_DIGITS: Final = 15
RESTRICTED_EXTENDED_DIGITS: Final = 20

_MAX_STARTING_CODE: Final = 999_999_999
_PACK_TWICE: Final = struct.Struct(">LL").pack
_RESTRICTED_CHUNKS: Final = tuple(
    "".join("1234"[(n >> shift) & 3] for shift in (8, 6, 4, 2, 0)) for n in range(1024)
)
_KEY_BYTES: Final = 16


class TokenKind(StrEnum):
    """What a token does. The values are stored in the database: never change them."""

    ADD_TIME = "add_time"
    SET_TIME = "set_time"
    DISABLE_PAYG = "disable_payg"
    COUNTER_SYNC = "counter_sync"


@dataclass(frozen=True)
class DeviceCodeParams:
    """What a token generator needs to know about one device.

    ``starting_code`` 0 means "derive it from the key", exactly as the reference library does for
    any falsy starting code. ``extended`` selects 12-digit tokens (values up to 999,999);
    ``restricted`` writes tokens with the digits 1-4 only (15 or 20 digits).
    The key never appears in ``repr``.
    """

    key: bytes = field(repr=False)
    starting_code: int
    restricted: bool = False
    extended: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes | bytearray) or len(self.key) != _KEY_BYTES:
            raise ValueError("The device key must be exactly 16 bytes (32 hexadecimal characters).")
        if isinstance(self.key, bytearray):
            object.__setattr__(self, "key", bytes(self.key))
        if (
            isinstance(self.starting_code, bool)
            or not isinstance(self.starting_code, int)
            or not 0 <= self.starting_code <= _MAX_STARTING_CODE
        ):
            raise ValueError(
                f"The starting code must be an integer from 0 to {_MAX_STARTING_CODE:,}."
            )

    @classmethod
    def from_hex(
        cls, key_hex: str, starting_code: int, *, restricted: bool = False, extended: bool = False
    ) -> DeviceCodeParams:
        """Build from the 32-hex-character key format used in device lists."""
        try:
            key = bytes.fromhex(key_hex.strip())
        except ValueError:
            raise ValueError("The device key must be exactly 32 hexadecimal characters.") from None
        return cls(key=key, starting_code=starting_code, restricted=restricted, extended=extended)

    @property
    def effective_starting_code(self) -> int:
        """The starting code actually used: ``starting_code``, or the key-derived one if 0."""
        return self.starting_code or starting_code_from_key(self.key)


def starting_code_from_key(key: bytes) -> int:
    """The starting code the reference derives when none is given: SipHash(key, key)."""
    return _hash_to_standard(siphashc.siphash(key, key))


def _hash_to_standard(h: int) -> int:
    # XOR the two 32-bit halves, keep bits 2..31 (30 bits), fold into 9 digits. Written as
    # (h >> 34) ^ (low half >> 2): the same value, but fewer operations on 64-bit ints.
    code = (h >> 34) ^ ((h & 0xFFFFFFFF) >> 2)
    if code > 999_999_999:
        code -= 73_741_825
    return code


def _advance_standard(code: int, key: bytes, steps: int) -> int:
    """``steps`` hashes of a 9-digit chain: the code is packed big-endian, twice (8 bytes)."""
    sip = siphashc.siphash
    pack = _PACK_TWICE
    for _ in range(steps):
        h = sip(key, pack(code, code))
        code = (h >> 34) ^ ((h & 0xFFFFFFFF) >> 2)  # as in _hash_to_standard
        if code > 999_999_999:
            code -= 73_741_825
    return code


def _advance_extended(code: int, key: bytes, steps: int) -> int:
    """``steps`` hashes of a 12-digit chain: the code is packed as one big-endian 64-bit int."""
    sip = siphashc.siphash
    to_bytes = int.to_bytes
    for _ in range(steps):
        code = sip(key, to_bytes(code, 8)) >> 24  # top 40 bits
        if code > 999_999_999_999:
            code -= 99_511_627_777
    return code


def next_count(current: int, kind: TokenKind) -> int:
    """The count the next token of ``kind`` uses, given the last count used for this device.

    ADD_TIME tokens sit on even counts, every other kind on odd counts; the count always moves
    forward by 1 or 2.
    """
    if current < 0:
        raise ValueError("A token count cannot be negative.")
    odd = current % 2 == 1
    if kind is TokenKind.ADD_TIME:
        return current + 1 if odd else current + 2
    return current + 2 if odd else current + 1


def _checked_value(kind: TokenKind, value_raw: int, extended: bool) -> int:
    if isinstance(value_raw, bool) or not isinstance(value_raw, int):
        raise TypeError("The token value must be an int (days x time divider).")
    if kind is TokenKind.DISABLE_PAYG or kind is TokenKind.COUNTER_SYNC:
        own = DISABLE_VALUE if kind is TokenKind.DISABLE_PAYG else SYNC_VALUE
        if value_raw not in (0, own):
            raise ValueError(f"A {kind.value} token carries no value (pass 0 or {own}).")
        return own
    limit = MAX_EXTENDED_VALUE if extended else MAX_STANDARD_VALUE
    if not 0 <= value_raw <= limit:
        mode = "an extended" if extended else "a standard"
        raise ValueError(
            f"The value of {mode} {kind.value} token must be from 0 to {limit:,}"
            f" (days x time divider); got {value_raw:,}."
        )
    if extended and value_raw in (DISABLE_VALUE, SYNC_VALUE):
        # The reference would encode them, but a device reads 998 / 999 as DISABLE_PAYG /
        # COUNTER_SYNC (and a 999 ADD_TIME token could be entered again and again).
        raise ValueError(
            f"Extended {kind.value} tokens cannot carry {DISABLE_VALUE} or {SYNC_VALUE}: a device"
            " would read them as DISABLE_PAYG / COUNTER_SYNC."
        )
    return value_raw


def generate(
    params: DeviceCodeParams, *, kind: TokenKind, value_raw: int, current_count: int
) -> tuple[int, str]:
    """Make the next token of ``kind`` for a device whose last used count is ``current_count``.

    Returns ``(new_count, code)``, the same as ``openpaygo.generate_token(secret_key=key.hex(),
    count=current_count, value=value_raw, token_type=..., starting_code=starting_code,
    restricted_digit_set=restricted, extended_token=extended)`` (``value_divider`` left at 1).
    ``value_raw`` is days x time divider, 0-995 (0-999,999 extended, 998 and 999 excepted);
    DISABLE_PAYG and COUNTER_SYNC take 0 (or their own 998 / 999). The caller must store
    ``new_count`` atomically: two tokens made from the same stored count collide on the device.
    """
    if type(kind) is not TokenKind:
        kind = TokenKind(kind)
    value = _checked_value(kind, value_raw, params.extended)
    if isinstance(current_count, bool) or not isinstance(current_count, int):
        raise TypeError("The token count must be an int.")
    new_count = next_count(current_count, kind)
    return new_count, encode_at(params, value_raw=value, count=new_count)


def encode_at(params: DeviceCodeParams, *, value_raw: int, count: int) -> str:
    """The code carrying ``value_raw`` at exactly ``count``: the raw encoder under ``generate``.

    No kind, parity or range policy beyond what fits in the code (0-999, or 0-999,999 extended).
    Use ``generate`` to issue tokens; this is for tests and legacy vectors (e.g. OpenPAYGO-go's
    even-count 998 / 999 tokens, which the reference ``generate_token`` refuses to make).
    """
    modulo = 1_000_000 if params.extended else 1000
    if not 0 <= value_raw < modulo:
        raise ValueError(f"A token value must be from 0 to {modulo - 1:,}; got {value_raw:,}.")
    if count < 0:
        raise ValueError("A token count cannot be negative.")
    start = params.effective_starting_code
    base = (start % modulo + value_raw) % modulo
    if params.extended:
        code = _advance_extended(start - start % modulo + base, params.key, count)
        number = code - code % modulo + base
        if params.restricted:
            return _to_restricted(number, RESTRICTED_EXTENDED_DIGITS)
        return f"{number:012d}"
    code = _advance_standard(start - start % modulo + base, params.key, count)
    number = code - code % modulo + base
    if params.restricted:
        return _to_restricted(number, RESTRICTED_STANDARD_DIGITS)
    return f"{number:09d}"


def _to_restricted(number: int, digits: int) -> str:
    """Write ``number`` 2 bits per digit, most significant first, as digits 1-4.

    Five digits (10 bits) at a time from a table; ``digits`` is 15 or 20.
    """
    t = _RESTRICTED_CHUNKS
    low = t[number >> 20 & 0x3FF] + t[number >> 10 & 0x3FF] + t[number & 0x3FF]
    if digits == RESTRICTED_STANDARD_DIGITS:
        return low
    return t[number >> 30 & 0x3FF] + low


def normalize_code(text: str) -> str:
    """Remove the whitespace people type or print inside a code (``"123 456 789"``)."""
    return "".join(text.split())


def format_code(code: str) -> str:
    """Group a code in threes for people: ``format_code("123456789") == "123 456 789"``."""
    digits = normalize_code(code)
    return " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))


def code_to_number(code: str, *, restricted: bool) -> int:
    """The number a typed code stands for (restricted codes: 2 bits per digit 1-4).

    Raises ValueError for anything but digits (1-4 in restricted mode).
    """
    digits = normalize_code(code)
    allowed = "1234" if restricted else "0123456789"
    if not digits or not digits.isascii() or any(d not in allowed for d in digits):
        raise ValueError(f"A code is made of the digits {allowed} only.")
    if not restricted:
        return int(digits)
    number = 0
    for digit in digits:
        number = (number << 2) | (ord(digit) - 49)
    return number


def token_value(params: DeviceCodeParams, number: int) -> int:
    """The raw value a token number carries: its base minus the starting code's base."""
    modulo = 1_000_000 if params.extended else 1000
    return (number % modulo - params.effective_starting_code % modulo) % modulo


def matching_counts(params: DeviceCodeParams, number: int, stop: int) -> list[int]:
    """Every count in ``0 .. stop - 1`` at which the chain for ``number``'s value gives ``number``.

    Ascending, as the reference decoder tries them; normally zero or one count. The decoder's
    acceptance rules (window, used counts) are applied by the caller (see ``paygo.tokens.keypad``).
    """
    modulo = 1_000_000 if params.extended else 1000
    start = params.effective_starting_code
    base = number % modulo
    code = start - start % modulo + base
    low = number - base
    high = low + modulo
    key = params.key
    sip = siphashc.siphash
    to_bytes = int.to_bytes
    found: list[int] = []
    if params.extended:
        for count in range(stop):
            if low <= code < high:
                found.append(count)
            code = sip(key, to_bytes(code, 8)) >> 24
            if code > 999_999_999_999:
                code -= 99_511_627_777
        return found
    pack = _PACK_TWICE
    for count in range(stop):
        if low <= code < high:
            found.append(count)
        h = sip(key, pack(code, code))
        code = (h >> 34) ^ ((h & 0xFFFFFFFF) >> 2)
        if code > 999_999_999:
            code -= 73_741_825
    return found
