"""Phone numbers: E.164 normalisation with `phonenumbers`, and the digests providers send."""

from __future__ import annotations

import hashlib

import phonenumbers

from paygo.errors import InvalidInput


def normalise(raw: str, default_country: str = "KE") -> str:
    """Return a number in E.164 (`+254711000001`), refusing what is not a valid number."""
    text = raw.strip()
    candidates = [text]
    if text.isascii() and text.isdigit() and len(text) > 10 and not text.startswith("0"):
        # Providers send international numbers without the plus; a leading 0 is a
        # national trunk prefix (Nigeria's numbers are 11 digits with it).
        candidates.insert(0, "+" + text)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, default_country)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidInput(
        f"not a valid phone number: {raw[:40]!r}; write it as +254711000001 or "
        "in the national format",
        phone=raw,
    )


def try_normalise(raw: str | None, default_country: str = "KE") -> str | None:
    """Normalise when possible; None for masked, hashed or garbled numbers."""
    if not raw:
        return None
    try:
        return normalise(raw, default_country)
    except InvalidInput:
        return None


def msisdn_digest(e164: str) -> str:
    """The SHA-256 hex digest Daraja sends in place of the MSISDN (digits, no plus)."""
    return hashlib.sha256(e164.lstrip("+").encode()).hexdigest()


def country_code(e164: str) -> str:
    """Return the country calling code of an E.164 number (`254`)."""
    return str(phonenumbers.parse(e164).country_code)


def region(e164: str) -> str | None:
    """Return the ISO region of an E.164 number (`KE`)."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164))
