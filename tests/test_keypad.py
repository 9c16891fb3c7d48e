"""The simulated keypad accepts and refuses codes like a reference OpenPAYGO device."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openpaygo
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from openpaygo import TokenType

from paygo.tokens.codec import (
    DISABLE_VALUE,
    MAX_STANDARD_VALUE,
    SYNC_VALUE,
    DeviceCodeParams,
    TokenKind,
    encode_at,
    format_code,
    generate,
)
from paygo.tokens.keypad import Keypad, KeypadResult, KeypadStatus

REPO = Path(__file__).resolve().parents[1]
OPENPAYGO_DATA = Path(__file__).resolve().parents[2] / "shared" / "openpaygo"
HYPOTHESIS_DB = DirectoryBasedExampleDatabase(str(REPO / ".hypothesis" / "examples"))

KEY_HEX = "bc41ec9530f6dac86b1a29ab82edc5fb"
STARTING_CODE = 516959010


def shared_file(name: str) -> Path:
    path = OPENPAYGO_DATA / name
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: these tests need the reference data in ../shared/openpaygo "
            "beside the checkout",
            pytrace=False,
        )
    return path


def device(
    *, restricted: bool = False, extended: bool = False, divider: int = 1
) -> tuple[DeviceCodeParams, Keypad]:
    params = DeviceCodeParams.from_hex(
        KEY_HEX, STARTING_CODE, restricted=restricted, extended=extended
    )
    return params, Keypad.from_params(params, time_divider=divider)


class Server:
    """Issues tokens the way the gateway does: from the stored count, then stores the new one."""

    def __init__(self, params: DeviceCodeParams, count: int = 0) -> None:
        self.params = params
        self.count = count

    def issue(self, kind: TokenKind, value_raw: int = 0) -> str:
        self.count, code = generate(
            self.params, kind=kind, value_raw=value_raw, current_count=self.count
        )
        return code


def test_quick_test_sequence_from_the_docs_is_reproduced() -> None:
    sequence: dict[str, Any] = json.loads(shared_file("docs_quick_test_sequence.json").read_text())
    keypad = Keypad.from_hex(
        sequence["key_hex"],
        sequence["starting_code"],
        restricted=sequence["restricted_digit_set"],
        time_divider=sequence["value_divider"],
        count=sequence["initial_device_count"],
    )
    days_left = 0.0
    for step in sequence["steps"]:
        expect: str = step["expect"]
        result = keypad.enter(step["token"])
        if "ALREADY_USED" in expect:
            assert result.status is KeypadStatus.ALREADY_USED, expect
            continue
        assert result.accepted, expect
        assert result.token_count == step["count"] == keypad.count == result.new_count
        if expect.startswith("DISABLE_PAYG"):
            assert result.kind is TokenKind.DISABLE_PAYG
            assert result.value_raw == DISABLE_VALUE
            assert keypad.payg_enabled is False
            continue
        match = re.match(r"(ADD_TIME|SET_TIME) (\d+) days?", expect)
        assert match, f"unexpected step in the sequence: {expect}"
        days = float(match.group(2))
        assert result.kind is TokenKind(match.group(1).lower())
        assert result.days == days
        days_left = days if result.kind is TokenKind.SET_TIME else days_left + days
        assert keypad.days_left == days_left
        assert keypad.payg_enabled is True


@pytest.mark.parametrize(
    ("restricted", "extended"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_every_issued_token_is_accepted_in_order(restricted: bool, extended: bool) -> None:
    params, keypad = device(restricted=restricted, extended=extended, divider=4)
    server = Server(params)
    plan = [
        (TokenKind.ADD_TIME, 28),
        (TokenKind.ADD_TIME, 4),
        (TokenKind.SET_TIME, 120),
        (TokenKind.ADD_TIME, 2),
        (TokenKind.COUNTER_SYNC, 0),
        (TokenKind.SET_TIME, 8),
        (TokenKind.ADD_TIME, 400),
        (TokenKind.DISABLE_PAYG, 0),
        (TokenKind.SET_TIME, 40),
        (TokenKind.ADD_TIME, 0),
        (TokenKind.ADD_TIME, MAX_STANDARD_VALUE),
    ]
    days_left = 0.0
    for kind, value in plan:
        result = keypad.enter(server.issue(kind, value))
        assert result.accepted
        assert result.kind is kind
        assert result.token_count == server.count == keypad.count
        if kind is TokenKind.ADD_TIME:
            days_left += value / 4
        elif kind is TokenKind.SET_TIME:
            days_left = value / 4
        assert keypad.days_left == days_left
        assert keypad.payg_enabled is (kind is not TokenKind.DISABLE_PAYG)


def test_spaces_typed_inside_a_code_are_ignored() -> None:
    params, keypad = device()
    code = Server(params).issue(TokenKind.ADD_TIME, 7)
    assert keypad.enter(f"  {format_code(code)} ").days == 7


def test_a_token_entered_twice_is_already_used() -> None:
    params, keypad = device()
    code = Server(params).issue(TokenKind.ADD_TIME, 7)
    assert keypad.enter(code).accepted
    again = keypad.enter(code)
    assert again.status is KeypadStatus.ALREADY_USED
    assert again.kind is None and again.days is None
    assert keypad.days_left == 7


def test_older_unused_add_time_tokens_are_accepted_once_out_of_order() -> None:
    params, keypad = device()
    server = Server(params)
    codes = [server.issue(TokenKind.ADD_TIME, day) for day in range(1, 6)]  # counts 2..10
    assert keypad.enter(codes[-1]).token_count == 10
    for code in reversed(codes[:-1]):
        result = keypad.enter(code)
        assert result.accepted and result.kind is TokenKind.ADD_TIME
        assert keypad.count == 10  # an older token does not move the count back
    assert keypad.days_left == sum(range(1, 6))
    for code in codes:
        assert keypad.enter(code).status is KeypadStatus.ALREADY_USED
    assert keypad.days_left == sum(range(1, 6))


def test_older_add_time_tokens_16_or_more_counts_back_are_refused() -> None:
    params, keypad = device()
    server = Server(params)
    old = server.issue(TokenKind.ADD_TIME, 3)  # count 2
    in_window = server.issue(TokenKind.ADD_TIME, 4)  # count 4
    server.count = 18
    newest = server.issue(TokenKind.ADD_TIME, 5)  # count 20: 2 is 18 back, 4 is 16 back
    assert keypad.enter(newest).accepted
    assert keypad.enter(old).status is KeypadStatus.ALREADY_USED
    assert keypad.enter(in_window).status is KeypadStatus.ALREADY_USED
    server.count = 4
    just_inside = server.issue(TokenKind.ADD_TIME, 6)  # count 6: 14 back
    assert keypad.enter(just_inside).accepted
    assert keypad.days_left == 11


def test_older_set_time_tokens_are_refused_even_unused() -> None:
    params, keypad = device()
    server = Server(params)
    set_time = server.issue(TokenKind.SET_TIME, 30)  # count 1
    assert keypad.enter(server.issue(TokenKind.ADD_TIME, 2)).accepted  # count 2
    assert keypad.enter(set_time).status is KeypadStatus.ALREADY_USED
    assert keypad.days_left == 2


def test_a_set_time_token_marks_older_add_time_tokens_used() -> None:
    params, keypad = device()
    server = Server(params)
    skipped = server.issue(TokenKind.ADD_TIME, 9)  # count 2, never entered in order
    assert keypad.enter(server.issue(TokenKind.SET_TIME, 30)).accepted  # count 3
    assert keypad.enter(skipped).status is KeypadStatus.ALREADY_USED


def test_tokens_up_to_64_counts_ahead_are_accepted_and_further_ones_invalid() -> None:
    params, keypad = device()
    too_far = Server(params, count=64).issue(TokenKind.ADD_TIME, 5)  # count 66
    too_far_set = Server(params, count=64).issue(TokenKind.SET_TIME, 5)  # count 65
    furthest = Server(params, count=62).issue(TokenKind.ADD_TIME, 5)  # count 64
    assert keypad.enter(too_far).status is KeypadStatus.INVALID
    assert keypad.enter(too_far_set).status is KeypadStatus.INVALID
    assert keypad.invalid_entries == 2
    result = keypad.enter(furthest)
    assert result.accepted and keypad.count == 64
    assert keypad.invalid_entries == 0
    assert keypad.enter(too_far).accepted  # 66 is now within reach


def test_counter_sync_reaches_100_counts_ahead() -> None:
    params, keypad = device()
    too_far = Server(params, count=100).issue(TokenKind.COUNTER_SYNC)  # count 101
    sync = Server(params, count=98).issue(TokenKind.COUNTER_SYNC)  # count 99
    assert keypad.enter(too_far).status is KeypadStatus.INVALID
    result = keypad.enter(sync)
    assert result.accepted and result.kind is TokenKind.COUNTER_SYNC
    assert result.value_raw == SYNC_VALUE and result.days is None
    assert keypad.count == 99
    assert keypad.enter(Server(params, count=160).issue(TokenKind.ADD_TIME, 1)).accepted


def test_counter_sync_sets_the_count_even_backwards_and_can_be_repeated_like_the_reference() -> (
    None
):
    params, keypad = device()
    server = Server(params, count=39)
    sync = server.issue(TokenKind.COUNTER_SYNC)  # count 41
    server.count = 48
    assert keypad.enter(server.issue(TokenKind.ADD_TIME, 1)).accepted  # count 50
    for _ in range(2):
        result = keypad.enter(sync)
        assert result.accepted and keypad.count == 41


def test_two_tokens_from_the_same_stored_count_collide() -> None:
    params, keypad = device()
    first = generate(params, kind=TokenKind.ADD_TIME, value_raw=5, current_count=10)
    second = generate(params, kind=TokenKind.ADD_TIME, value_raw=10, current_count=10)
    assert first[0] == second[0] == 12 and first[1] != second[1]
    assert keypad.enter(first[1]).accepted
    assert keypad.enter(second[1]).status is KeypadStatus.ALREADY_USED
    assert keypad.days_left == 5


def test_disable_payg_stops_add_time_until_a_set_time() -> None:
    params, keypad = device()
    server = Server(params)
    assert keypad.enter(server.issue(TokenKind.ADD_TIME, 10)).accepted
    assert keypad.enter(server.issue(TokenKind.DISABLE_PAYG)).kind is TokenKind.DISABLE_PAYG
    assert keypad.payg_enabled is False
    added = keypad.enter(server.issue(TokenKind.ADD_TIME, 5))
    assert added.accepted and added.days == 5
    assert keypad.days_left == 10 and keypad.payg_enabled is False  # no effect while off
    assert keypad.enter(server.issue(TokenKind.SET_TIME, 3)).accepted
    assert keypad.payg_enabled is True and keypad.days_left == 3


def test_restricted_keypad_accepts_digits_1_to_4_only() -> None:
    params, keypad = device(restricted=True)
    code = Server(params).issue(TokenKind.ADD_TIME, 12)
    assert len(code) == 15 and set(code) <= set("1234")
    assert keypad.enter(code[:-1] + "5").status is KeypadStatus.INVALID
    assert keypad.enter(code[:-1] + "0").status is KeypadStatus.INVALID
    assert keypad.enter(format_code(code)).days == 12


def test_extended_tokens_carry_large_values() -> None:
    params, keypad = device(extended=True, divider=1000)
    code = Server(params).issue(TokenKind.SET_TIME, 365_250)
    assert len(code) == 12
    result = keypad.enter(code)
    assert result.accepted and result.kind is TokenKind.SET_TIME and result.days == 365.25


def test_restricted_extended_tokens_have_20_digits() -> None:
    params, keypad = device(restricted=True, extended=True)
    code = Server(params).issue(TokenKind.ADD_TIME, 123_456)
    assert len(code) == 20
    assert keypad.enter(code).value_raw == 123_456


def test_extended_device_still_accepts_standard_tokens() -> None:
    params, keypad = device(extended=True)
    standard = DeviceCodeParams.from_hex(KEY_HEX, STARTING_CODE)
    assert keypad.enter(Server(standard).issue(TokenKind.ADD_TIME, 3)).accepted
    assert keypad.enter(Server(params, count=2).issue(TokenKind.ADD_TIME, 3)).accepted


def test_standard_device_refuses_extended_tokens() -> None:
    extended = DeviceCodeParams.from_hex(KEY_HEX, STARTING_CODE, extended=True)
    _, keypad = device()
    assert keypad.enter(Server(extended).issue(TokenKind.ADD_TIME, 3)).status is (
        KeypadStatus.INVALID
    )


def test_extended_disable_and_sync_are_read_from_their_value() -> None:
    params, keypad = device(extended=True)
    server = Server(params)
    assert keypad.enter(server.issue(TokenKind.DISABLE_PAYG)).kind is TokenKind.DISABLE_PAYG
    assert keypad.payg_enabled is False
    assert keypad.enter(server.issue(TokenKind.COUNTER_SYNC)).kind is TokenKind.COUNTER_SYNC


def test_go_even_count_disable_token_turns_payg_off() -> None:
    params, keypad = device()
    code = encode_at(params, value_raw=DISABLE_VALUE, count=22)
    assert code == "146345008"  # go_sample_tokens.json, legacy ADD_TIME 998
    result = keypad.enter(code)
    assert result.kind is TokenKind.DISABLE_PAYG and keypad.payg_enabled is False


@pytest.mark.parametrize("code", ["", "12345678", "1234567890", "12345678a", "123-456-789"])
def test_malformed_codes_are_invalid(code: str) -> None:
    _, keypad = device()
    assert keypad.enter(code).status is KeypadStatus.INVALID
    assert keypad.count == 0


def test_repr_never_shows_the_key() -> None:
    _, keypad = device()
    assert KEY_HEX not in repr(keypad) and "key=" not in repr(keypad)


# --- agreement with openpaygo.decode_token -------------------------------------------------

REFERENCE_KIND = {
    TokenType.ADD_TIME: TokenKind.ADD_TIME,
    TokenType.SET_TIME: TokenKind.SET_TIME,
    TokenType.DISABLE_PAYG: TokenKind.DISABLE_PAYG,
    TokenType.COUNTER_SYNC: TokenKind.COUNTER_SYNC,
}


def reference_decode(keypad: Keypad, code: str) -> tuple[Any, ...]:
    try:
        result: tuple[Any, ...] = openpaygo.decode_token(
            token=code,
            secret_key=keypad.key.hex(),
            count=keypad.count,
            used_counts=list(keypad.used_counts),
            starting_code=keypad.starting_code,
            value_divider=keypad.time_divider,
            restricted_digit_set=keypad.restricted,
        )
    except UnboundLocalError:  # the reference's answer to an unknown extended token
        return (None, TokenType.INVALID, None, None)
    return result


def assert_same_outcome(reference: tuple[Any, ...], result: KeypadResult, keypad: Keypad) -> None:
    value, token_type, count, used = reference
    if value is None:
        expected = {
            TokenType.INVALID: KeypadStatus.INVALID,
            TokenType.ALREADY_USED: KeypadStatus.ALREADY_USED,
        }[token_type]
        assert result.status is expected
        return
    assert result.accepted
    assert result.value_raw is not None
    assert value == result.value_raw / keypad.time_divider
    assert count == result.token_count
    assert used == keypad.used_counts
    kind = REFERENCE_KIND[token_type]
    if result.value_raw == DISABLE_VALUE:
        kind = TokenKind.DISABLE_PAYG  # extended: the reference says SET_TIME, value 998
    elif result.value_raw == SYNC_VALUE:
        kind = TokenKind.COUNTER_SYNC
    assert result.kind is kind


@st.composite
def entries(draw: st.DrawFn, params: DeviceCodeParams, start: int) -> list[str]:
    """Codes a person might type: fresh, old, repeated, far-ahead or made-up tokens."""
    codes: list[str] = []
    count = start
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.sampled_from(["issue", "issue", "issue", "repeat", "random"]))
        if choice == "repeat" and codes:
            codes.append(draw(st.sampled_from(codes)))
            continue
        if choice == "random":
            length = {
                (False, False): 9,
                (False, True): 12,
                (True, False): 15,
                (True, True): 20,
            }[(params.restricted, draw(st.booleans()) and params.extended)]
            alphabet = "1234" if params.restricted else "0123456789"
            codes.append(draw(st.text(alphabet, min_size=length, max_size=length)))
            continue
        token_params = params
        if params.extended and draw(st.booleans()):
            token_params = DeviceCodeParams(
                key=params.key, starting_code=params.starting_code, restricted=params.restricted
            )
        kind = draw(st.sampled_from(TokenKind))
        value = 0
        if kind in (TokenKind.ADD_TIME, TokenKind.SET_TIME):
            value = draw(st.integers(0, MAX_STANDARD_VALUE))
        base = max(0, count + draw(st.integers(-20, 110)))
        new_count, code = generate(token_params, kind=kind, value_raw=value, current_count=base)
        count = max(count, new_count)
        codes.append(code)
    return codes


@settings(
    max_examples=500,
    deadline=None,
    database=HYPOTHESIS_DB,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_keypad_agrees_with_reference_decode_token_on_random_tokens(data: st.DataObject) -> None:
    params = DeviceCodeParams(
        key=data.draw(st.binary(min_size=16, max_size=16)),
        starting_code=data.draw(st.integers(0, 999_999_999)),
        restricted=data.draw(st.booleans()),
        extended=data.draw(st.booleans()),
    )
    keypad = Keypad.from_params(
        params,
        time_divider=data.draw(st.sampled_from([1, 2, 4, 24])),
        count=data.draw(st.integers(0, 150)),
    )
    for code in data.draw(entries(params, keypad.count)):
        reference = reference_decode(keypad, code)
        count_before = keypad.count
        result = keypad.enter(code)
        older = result.token_count is not None and result.token_count <= count_before
        event(f"{result.status.value}{' (older count)' if older else ''}")
        assert_same_outcome(reference, result, keypad)
        if result.accepted:
            assert result.token_count is not None
            moved = result.token_count > count_before or result.value_raw == SYNC_VALUE
            assert keypad.count == (result.token_count if moved else count_before)
