"""Account numbers: short numeric strings ending in a Damm check digit.

Damm rather than Luhn: Damm catches every single-digit error and every adjacent
transposition (Luhn misses 09<->90), which are exactly the mistakes people make when
typing an account number into a mobile-money menu.
"""

from __future__ import annotations

from collections.abc import Iterator

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)
#: Account numbers are 7 digits of sequence plus the check digit.
LENGTH = 8
FIRST = 1_000_000


def check_digit(digits: str) -> str:
    """Return the Damm check digit of a string of digits."""
    interim = 0
    for char in digits:
        interim = _DAMM[interim][int(char)]
    return str(interim)


def is_valid(number: str) -> bool:
    """True when `number` is all digits and its last digit checks the rest."""
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses.
    return len(number) >= 2 and number.isascii() and number.isdigit() and check_digit(number) == "0"


def from_sequence(sequence: int) -> str:
    """Make the account number for the n-th account (starting at 1)."""
    body = str(FIRST + sequence - 1)
    return body + check_digit(body)


def corrections(number: str) -> Iterator[str]:
    """Yield every valid number one substituted digit or one swapped adjacent pair away."""
    seen: set[str] = set()
    digits = list(number)
    for i, original in enumerate(digits):
        for d in "0123456789":
            if d != original:
                candidate = "".join(digits[:i] + [d] + digits[i + 1 :])
                if is_valid(candidate) and candidate not in seen:
                    seen.add(candidate)
                    yield candidate
    for i in range(len(digits) - 1):
        if digits[i] != digits[i + 1]:
            swapped = digits[:]
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
            candidate = "".join(swapped)
            if is_valid(candidate) and candidate not in seen:
                seen.add(candidate)
                yield candidate
