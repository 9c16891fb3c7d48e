"""A connected box for tests: the reference library builds its requests, a keypad takes codes.

`ConnectedBox` talks to the Metrics server the way a box with a modem does: each request is
made by `openpaygo`'s `MetricsRequestHandler` (a fresh request count and a clock that moves
on), each answer's signature is checked with the library's own response signature, and the
codes in `tkl` are typed on the box's simulated keypad.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask.testing import FlaskClient
from openpaygo.metrics_request import MetricsRequestHandler
from openpaygo.metrics_shared import OpenPAYGOMetricsShared
from werkzeug.test import TestResponse

from paygo.crypto import KeyBox
from paygo.models import Device
from paygo.tokens.keypad import Keypad, KeypadResult
from tests.keypads import keypad_for

DD = "/openpaygo/metrics/dd"


class ConnectedBox:
    """One box with a modem and a keypad."""

    def __init__(
        self,
        client: FlaskClient,
        *,
        serial: str,
        key_hex: str,
        keypad: Keypad | None = None,
        auth: str = "ra",
        data_format: dict[str, Any] | None = None,
    ) -> None:
        self.client, self.serial, self.key_hex = client, serial, key_hex
        self.keypad, self.auth, self.data_format = keypad, auth, data_format
        self.request_count = 0
        # A clock an hour behind the server's, moving a minute a request: never "ahead".
        self.clock = int(time.time()) - 3600
        self.last: dict[str, Any] = {}

    @classmethod
    def of(cls, client: FlaskClient, device: Device, keys: KeyBox, **options: Any) -> ConnectedBox:
        """The box of a stored device, its keypad at the count last known on it."""
        return cls(
            client,
            serial=device.serial,
            key_hex=keys.open(device.secret_key_encrypted),
            keypad=keypad_for(device, keys),
            **options,
        )

    def state(self) -> dict[str, Any]:
        """What the box reports about itself: its token count."""
        return {"token_count": self.keypad.count} if self.keypad else {}

    def build(
        self,
        data: dict[str, Any] | None = None,
        historical: list[dict[str, Any]] | None = None,
        *,
        condensed: bool = False,
        auth: str | None = None,
        key_hex: str | None = None,
        timestamp: bool = True,
        count: bool = True,
    ) -> str:
        """One request payload, made by the reference library."""
        handler = MetricsRequestHandler(
            self.serial,
            data_format=self.data_format or {},
            secret_key=key_hex or self.key_hex,
            auth_method=auth or self.auth,
        )
        self.last = {}
        if count:
            self.request_count += 1
            handler.set_request_count(self.request_count)
            self.last["rc"] = self.request_count
        if timestamp:
            self.clock += 60
            handler.set_timestamp(self.clock)
            self.last["ts"] = self.clock
        handler.set_data(self.state() if data is None else data)
        if historical:
            handler.set_historical_data(historical)
        if condensed:
            return str(handler.get_condensed_request_payload())
        return str(handler.get_simple_request_payload())

    def post(self, payload: str | bytes, path: str = DD) -> TestResponse:
        return self.client.post(path, data=payload, content_type="application/json")

    def report(self, data: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        """Send a request and return the answer, after checking its status and signature."""
        historical = options.pop("historical", None)
        response = self.post(self.build(data, historical, **options))
        assert response.status_code == 201, response.get_data(as_text=True)
        answer: dict[str, Any] = json.loads(response.get_data(as_text=True))
        assert self.signature_holds(answer), answer
        return answer

    def signature_holds(self, answer: dict[str, Any]) -> bool:
        """Whether the answer's `a` is the reference library's response signature."""
        simple = OpenPAYGOMetricsShared.convert_dict_keys_to_simple(answer)
        auth, serial = simple.pop("auth"), simple.pop("serial_number")
        expected = OpenPAYGOMetricsShared.generate_response_signature_from_data(
            serial_number=serial,
            request_count=self.last.get("rc"),
            data=simple,
            timestamp=self.last.get("ts"),
            secret_key=self.key_hex,
        )
        return bool(serial == self.serial and auth == expected)

    def apply(self, answer: dict[str, Any]) -> list[KeypadResult]:
        """Type every code of the answer's `tkl` on the keypad, in the order given."""
        assert self.keypad is not None
        return [self.keypad.enter(digits(code)) for code in answer.get("tkl", [])]


def digits(code: int) -> str:
    """A code sent as a number, as the digits typed (leading zeros back: 9 or 12 digits)."""
    text = str(code)
    return text.zfill(9) if len(text) <= 9 else text.zfill(12) if len(text) <= 12 else text
