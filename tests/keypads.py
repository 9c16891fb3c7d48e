"""A `Keypad` for a stored device: types issued codes the way a customer would."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session

from paygo.crypto import KeyBox
from paygo.models import Device, Token
from paygo.tokens.issue import device_params
from paygo.tokens.keypad import Keypad, KeypadResult


def keypad_for(device: Device, keys: KeyBox) -> Keypad:
    """The simulated box for a device, at the count it last had on the shelf."""
    return Keypad.from_params(
        device_params(keys, device), time_divider=device.time_divider, count=device.entered_count
    )


class Boxes:
    """The customers' boxes: one keypad per device, made the first time a code is typed."""

    def __init__(self, session: Session, keys: KeyBox) -> None:
        self.session, self.keys = session, keys
        self.keypads: dict[int, Keypad] = {}

    def keypad(self, device_id: int) -> Keypad:
        """The box of a device (created at the count last confirmed on it)."""
        if device_id not in self.keypads:
            device = self.session.get(Device, device_id)
            assert device is not None
            self.keypads[device_id] = keypad_for(device, self.keys)
        return self.keypads[device_id]

    def type(self, tokens: Iterable[Token]) -> list[KeypadResult]:
        """Type each code on its box, in the order given; every one must be accepted."""
        results = []
        for token in tokens:
            result = self.keypad(token.device_id).enter(token.code)
            assert result.accepted, f"the box refused {token.type} at count {token.count}"
            results.append(result)
        return results
