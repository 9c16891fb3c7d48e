"""A simulated OpenPAYGO device keypad, for tests and support tools.

``Keypad.enter`` applies a typed code the way a device running the reference decoder
(``openpaygo.decode_token``, 0.6.x) and the reference device logic (OpenPAYGO-python's device
simulator) would, but decodes with the fast codec:

* a token is tried at every count from 0 to ``count + 64`` (``count + 100`` for a standard
  COUNTER_SYNC token); the first count whose code matches *and* passes the rules wins:
  - any count above the device count is accepted;
  - an unused ADD_TIME count less than 16 below it is accepted once (``used_counts``);
  - a COUNTER_SYNC (value 999) count is accepted when above ``count - 64``, used or not;
* a matching code that fails the rules is ALREADY_USED; no match at all is INVALID;
* the device count moves to the token's count when higher (or always, for COUNTER_SYNC);
* the effect follows the value, like the reference device: 998 turns PAYG off, 999 only syncs,
  ADD_TIME adds days and SET_TIME sets them (value / time divider); SET_TIME turns PAYG back on;
  ADD_TIME has no effect while PAYG is off.

Differences from the reference, all on inputs a real keypad cannot produce or the reference
crashes on: codes must be exactly 9 or 12 digits (15 or 20 digits 1-4 when restricted), and
12/20-digit codes only when the device is ``extended``; an unknown extended code is INVALID where
the reference raises ``UnboundLocalError``; an empty ``used_counts`` starts as ``[count]`` (the
reference returns ``None`` for the new list and crashes on the next older token).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from paygo.tokens.codec import (
    DISABLE_VALUE,
    EXTENDED_DIGITS,
    MAX_COUNT_JUMP,
    MAX_COUNT_JUMP_SYNC,
    MAX_EXTENDED_VALUE,
    MAX_OLDER_ADD_TIME,
    MAX_STANDARD_VALUE,
    RESTRICTED_EXTENDED_DIGITS,
    RESTRICTED_STANDARD_DIGITS,
    STANDARD_DIGITS,
    SYNC_VALUE,
    DeviceCodeParams,
    TokenKind,
    code_to_number,
    matching_counts,
    normalize_code,
    token_value,
)

__all__ = ["Keypad", "KeypadResult", "KeypadStatus"]


class KeypadStatus(StrEnum):
    ACCEPTED = "accepted"
    ALREADY_USED = "already_used"
    INVALID = "invalid"


@dataclass(frozen=True)
class KeypadResult:
    """What the device did with one typed code.

    ``kind``, ``token_count`` and ``value_raw`` are set only when accepted. ``days`` is the days
    an accepted ADD_TIME token adds or a SET_TIME token sets (``value_raw / time_divider``), else
    None. ``new_count`` is the device count after the entry.
    """

    status: KeypadStatus
    new_count: int
    kind: TokenKind | None = None
    token_count: int | None = None
    value_raw: int | None = None
    days: float | None = None

    @property
    def accepted(self) -> bool:
        return self.status is KeypadStatus.ACCEPTED


@dataclass
class Keypad:
    """One device's token state. ``days_left`` ignores the clock: nothing counts down."""

    key: bytes = field(repr=False)
    starting_code: int
    restricted: bool = False
    extended: bool = False
    time_divider: int = 1
    count: int = 0
    used_counts: list[int] = field(default_factory=list)
    days_left: float = 0.0
    payg_enabled: bool = True
    invalid_entries: int = 0
    _params: DeviceCodeParams = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._params = DeviceCodeParams(
            key=self.key, starting_code=self.starting_code, restricted=self.restricted
        )
        if self.time_divider <= 0:
            raise ValueError("The time divider must be a positive integer.")
        if self.count < 0:
            raise ValueError("A token count cannot be negative.")
        self.used_counts = list(self.used_counts) or [self.count]

    @classmethod
    def from_hex(
        cls,
        key_hex: str,
        starting_code: int,
        *,
        restricted: bool = False,
        extended: bool = False,
        time_divider: int = 1,
        count: int = 0,
        days_left: float = 0.0,
    ) -> Keypad:
        """A fresh device from the device-list format (32 hex character key)."""
        params = DeviceCodeParams.from_hex(key_hex, starting_code)
        return cls(
            key=params.key,
            starting_code=starting_code,
            restricted=restricted,
            extended=extended,
            time_divider=time_divider,
            count=count,
            days_left=days_left,
        )

    @classmethod
    def from_params(
        cls,
        params: DeviceCodeParams,
        *,
        time_divider: int = 1,
        count: int = 0,
        days_left: float = 0.0,
    ) -> Keypad:
        """The device matching the parameters tokens are generated with."""
        return cls(
            key=params.key,
            starting_code=params.starting_code,
            restricted=params.restricted,
            extended=params.extended,
            time_divider=time_divider,
            count=count,
            days_left=days_left,
        )

    def enter(self, code: str) -> KeypadResult:
        """Type ``code`` (spaces allowed) on the device and apply it."""
        digits = normalize_code(code)
        if self.restricted:
            lengths = {RESTRICTED_STANDARD_DIGITS: False, RESTRICTED_EXTENDED_DIGITS: True}
        else:
            lengths = {STANDARD_DIGITS: False, EXTENDED_DIGITS: True}
        extended = lengths.get(len(digits))
        if extended is None or (extended and not self.extended):
            return self._invalid()
        try:
            number = code_to_number(digits, restricted=self.restricted)
        except ValueError:
            return self._invalid()
        params = replace(self._params, extended=extended)
        value = token_value(params, number)
        jump = MAX_COUNT_JUMP_SYNC if value == SYNC_VALUE and not extended else MAX_COUNT_JUMP
        matched = False
        for token_count in matching_counts(params, number, self.count + jump + 1):
            if self._count_is_valid(token_count, value):
                return self._apply(token_count, value, extended)
            matched = True
        if matched:
            return KeypadResult(KeypadStatus.ALREADY_USED, self.count)
        return self._invalid()

    def _invalid(self) -> KeypadResult:
        self.invalid_entries += 1
        return KeypadResult(KeypadStatus.INVALID, self.count)

    def _count_is_valid(self, token_count: int, value: int) -> bool:
        if value == SYNC_VALUE:
            return token_count > self.count - MAX_COUNT_JUMP
        if token_count > self.count:
            return True
        return (
            token_count > self.count - MAX_OLDER_ADD_TIME
            and token_count % 2 == 0
            and token_count not in self.used_counts
        )

    def _updated_used_counts(self, token_count: int, value: int) -> list[int]:
        highest = max(max(self.used_counts), token_count)
        window = range(highest - MAX_OLDER_ADD_TIME, highest + 1)
        if token_count % 2 == 1 or value in (DISABLE_VALUE, SYNC_VALUE):
            return list(window)  # everything older counts as used
        used = set(self.used_counts)
        return [c for c in window if c == token_count or c in used]

    def _apply(self, token_count: int, value: int, extended: bool) -> KeypadResult:
        self.used_counts = self._updated_used_counts(token_count, value)
        if token_count > self.count or value == SYNC_VALUE:
            self.count = token_count
        self.invalid_entries = 0
        max_time = MAX_EXTENDED_VALUE if extended else MAX_STANDARD_VALUE
        days: float | None = None
        if value == DISABLE_VALUE:
            kind = TokenKind.DISABLE_PAYG
            self.payg_enabled = False
        elif value == SYNC_VALUE:
            kind = TokenKind.COUNTER_SYNC
        else:
            kind = TokenKind.SET_TIME if token_count % 2 else TokenKind.ADD_TIME
            if value <= max_time:  # else an undefined command (996, 997): no effect
                days = value / self.time_divider
                if kind is TokenKind.SET_TIME:
                    self.payg_enabled = True
                    self.days_left = days
                elif self.payg_enabled:
                    self.days_left += days
        return KeypadResult(
            KeypadStatus.ACCEPTED,
            self.count,
            kind=kind,
            token_count=token_count,
            value_raw=value,
            days=days,
        )
