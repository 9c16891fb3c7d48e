"""Money in minor units, E.164 phones and Damm-checked account numbers."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygo import accountnumbers
from paygo.errors import InvalidInput
from paygo.money import EXPONENTS, exponent, format_minor, to_minor
from paygo.phones import country_code, msisdn_digest, normalise, region, try_normalise

# --- money -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("150", "KES", 15000),
        ("1.00", "KES", 100),
        ("1,000.50", "KES", 100050),
        ("12,345,678", "KES", 1234567800),
        ("0.5", "KES", 50),
        (".5", "KES", 50),
        ("  42 ", "kes", 4200),
        ("1500", "UGX", 1500),
        ("1500.000", "UGX", 1500),
        (150, "KES", 15000),
        (Decimal("2.25"), "USD", 225),
        ("-5", "KES", -500),
    ],
)
def test_major_units_as_typed_become_integer_minor_units(
    amount: str | int | Decimal, currency: str, minor: int
) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize(
    "amount",
    [
        "",
        "abc",
        "1e3",
        "NaN",
        "Infinity",
        "1,0,0",
        "1.2.3",
        "12,34",
        "1 000",
        "0x10",
        "١٢e",
        "--5",
        True,
    ],
)
def test_anything_but_plain_decimal_notation_is_not_an_amount(amount: object) -> None:
    with pytest.raises(InvalidInput, match="not an amount"):
        to_minor(amount, "KES")  # type: ignore[arg-type]


def test_decimal_infinity_is_not_an_amount() -> None:
    with pytest.raises(InvalidInput, match="not an amount"):
        to_minor(Decimal("Infinity"), "KES")


def test_more_decimals_than_the_currency_has_is_refused() -> None:
    with pytest.raises(InvalidInput, match="more decimals than the currency allows"):
        to_minor("50.5", "UGX")
    with pytest.raises(InvalidInput, match="more decimals"):
        to_minor("1.005", "KES")


def test_an_unknown_currency_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="unknown currency 'XXX'"):
        to_minor("1", "XXX")
    with pytest.raises(InvalidInput):
        exponent("")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (150000, "KES", "KES 1,500"),
        (1250, "KES", "KES 12.50"),
        (5, "KES", "KES 0.05"),
        (0, "KES", "KES 0"),
        (1500000, "UGX", "UGX 1,500,000"),
        (-1250, "KES", "KES -12.50"),
    ],
)
def test_minor_units_render_for_people(minor: int, currency: str, text: str) -> None:
    assert format_minor(minor, currency) == text


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(sorted(EXPONENTS)))
def test_a_rendered_amount_parses_back_to_the_same_minor_units(minor: int, currency: str) -> None:
    shown = format_minor(minor, currency).split(" ", 1)[1]
    assert to_minor(shown, currency) == minor


# --- phones ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("+254711000001", "KE", "+254711000001"),
        ("0711000001", "KE", "+254711000001"),
        ("0711 000 001", "KE", "+254711000001"),
        ("711000001", "KE", "+254711000001"),
        ("254711000001", "KE", "+254711000001"),  # providers drop the plus
        ("255712345678", "KE", "+255712345678"),  # another country, no plus
        ("08031234567", "NG", "+2348031234567"),  # 11 digits with the trunk 0
        ("+256 772 123456", "KE", "+256772123456"),
    ],
)
def test_phones_are_normalised_to_e164(raw: str, country: str, e164: str) -> None:
    assert normalise(raw, country) == e164


@pytest.mark.parametrize("raw", ["", "12", "hello", "+254 7", "2547110000019999", "+999123456"])
def test_what_is_not_a_valid_phone_is_refused_with_a_hint(raw: str) -> None:
    with pytest.raises(InvalidInput, match=r"not a valid phone number.*\+254711000001"):
        normalise(raw, "KE")


def test_a_huge_phone_is_refused_without_echoing_all_of_it() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise("9" * 10_000, "KE")
    assert len(caught.value.message) < 200


def test_masked_or_hashed_numbers_normalise_to_none() -> None:
    assert try_normalise("2547*****001") is None
    assert try_normalise(hashlib.sha256(b"254711000001").hexdigest()) is None
    assert try_normalise(None) is None
    assert try_normalise("0711000001") == "+254711000001"


def test_msisdn_digest_matches_what_daraja_sends() -> None:
    assert msisdn_digest("+254711000001") == hashlib.sha256(b"254711000001").hexdigest()


def test_country_code_and_region_of_an_e164_number() -> None:
    assert country_code("+254711000001") == "254"
    assert region("+255712345678") == "TZ"


# --- account numbers ---------------------------------------------------------------------


def test_damm_check_digit_matches_the_published_example() -> None:
    # Damm's worked example: 572 -> check digit 4, and 5724 validates.
    assert accountnumbers.check_digit("572") == "4"
    assert accountnumbers.is_valid("5724")
    assert not accountnumbers.is_valid("5723")


def test_account_numbers_are_eight_digits_ending_in_their_check_digit() -> None:
    numbers = [accountnumbers.from_sequence(n) for n in range(1, 2001)]
    assert numbers[0] == "10000004"
    assert len(set(numbers)) == len(numbers)
    assert all(len(n) == accountnumbers.LENGTH and accountnumbers.is_valid(n) for n in numbers)


@given(st.integers(min_value=1, max_value=8_999_999))
def test_every_single_digit_typo_is_caught(sequence: int) -> None:
    number = accountnumbers.from_sequence(sequence)
    for i, original in enumerate(number):
        for digit in "0123456789".replace(original, ""):
            assert not accountnumbers.is_valid(number[:i] + digit + number[i + 1 :])


@given(st.integers(min_value=1, max_value=8_999_999))
def test_every_adjacent_swap_is_caught(sequence: int) -> None:
    number = accountnumbers.from_sequence(sequence)
    for i in range(len(number) - 1):
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            assert not accountnumbers.is_valid(swapped)


@given(st.integers(min_value=1, max_value=8_999_999), st.integers(min_value=0, max_value=7))
def test_corrections_of_a_one_digit_typo_include_the_intended_number(
    sequence: int, position: int
) -> None:
    number = accountnumbers.from_sequence(sequence)
    typo = number[:position] + str((int(number[position]) + 1) % 10) + number[position + 1 :]
    fixes = list(accountnumbers.corrections(typo))
    assert number in fixes
    assert all(accountnumbers.is_valid(f) for f in fixes)
    assert len(fixes) == len(set(fixes))


@pytest.mark.parametrize("text", ["", "0", "1000000a", "1²", "١٠٠٠٠٠٠٤", "-10000004"])
def test_non_numbers_are_not_valid_account_numbers(text: str) -> None:
    assert not accountnumbers.is_valid(text)
