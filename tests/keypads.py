"""A `Keypad` for a stored device: types issued codes the way a customer would."""

from __future__ import annotations

from app.crypto import KeyBox
from app.models import Device
from app.tokens.issue import device_params
from app.tokens.keypad import Keypad


def keypad_for(device: Device, keys: KeyBox) -> Keypad:
    """The simulated box for a device, at the count it last had on the shelf."""
    return Keypad.from_params(device_params(keys, device), time_divider=device.time_divider,
                              count=device.entered_count)
