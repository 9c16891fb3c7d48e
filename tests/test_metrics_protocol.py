"""The Metrics wire format: our signatures are the reference library's, bad JSON is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpaygo.metrics_shared import OpenPAYGOMetricsShared

from paygo.errors import InvalidInput
from paygo.metrics import protocol
from paygo.metrics.protocol import AuthMethod, Refused

KEY_HEX = "bc41ec9530f6dac86b1a29ab82edc5fb"
KEY = bytes.fromhex(KEY_HEX)

names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | names
)
rows = st.dictionaries(names, scalars, max_size=5) | st.lists(scalars, max_size=5)
requests = st.fixed_dictionaries(
    {"serial_number": names},
    optional={
        "timestamp": st.integers(1, 2**32 - 1),
        "request_count": st.integers(1, 2**40),
        "data": rows,
        "historical_data": st.lists(rows, max_size=4),
    },
)


@settings(max_examples=300, deadline=None)
@given(raw=requests, method=st.sampled_from(list(AuthMethod)))
def test_request_signatures_are_the_reference_librarys(raw: dict[str, Any], method: str) -> None:
    if (
        method == "ta"
        and not raw.get("timestamp")
        or method == "ca"
        and not raw.get("request_count")
    ):
        return  # the library cannot sign these either (it raises)
    # A box's JSON goes over the wire and back: sign what the server will parse.
    raw = json.loads(json.dumps(raw))
    expected = OpenPAYGOMetricsShared.generate_request_signature_from_data(raw, method, KEY_HEX)
    assert protocol.request_signature(raw, AuthMethod(method), KEY) == expected


@settings(max_examples=200, deadline=None)
@given(
    serial=names,
    timestamp=st.none() | st.integers(1, 2**32 - 1),
    count=st.none() | st.integers(1, 2**40),
    answer=st.fixed_dictionaries(
        {},
        optional={
            "token_list": st.lists(st.integers(0, 10**12), max_size=5),
            "active_until_timestamp": st.integers(0, 2**31),
            "active_seconds_left": st.integers(0, 2**31),
            "settings": st.dictionaries(names, names, max_size=3),
            "extra_data": st.dictionaries(names, scalars, max_size=3),
        },
    ),
)
def test_answer_signatures_are_the_reference_librarys(
    serial: str, timestamp: int | None, count: int | None, answer: dict[str, Any]
) -> None:
    request = protocol.DeviceRequest(
        raw={"serial_number": serial},
        serial=serial,
        timestamp=timestamp,
        request_count=count,
        collected_at=None,
        data_format_id=None,
    )
    signed = protocol.signed_answer(request, answer, KEY)
    expected = OpenPAYGOMetricsShared.generate_response_signature_from_data(
        serial_number=serial,
        request_count=count,
        data=answer,
        timestamp=timestamp,
        secret_key=KEY_HEX,
    )
    assert signed["a"] == expected and signed["sn"] == serial
    assert set(signed) == {"sn", "a", *(protocol.CONDENSED[k] for k in answer)}


def _request(**raw: Any) -> protocol.DeviceRequest:
    body = {"serial_number": "A111222", "timestamp": 1611583070, "data": {"token_count": 1}}
    return protocol.parse_request(json.dumps({**body, **raw}).encode())


@pytest.mark.parametrize("method", ["da", "ra"])
def test_data_auth_covers_the_data_and_history(method: str) -> None:
    signed = _request(historical_data=[{"v": 1}])
    auth = protocol.request_signature(signed.raw, AuthMethod(method), KEY)
    assert protocol.verify(_request(historical_data=[{"v": 1}], auth=auth), KEY) == method
    with pytest.raises(Refused):
        protocol.verify(_request(historical_data=[{"v": 2}], auth=auth), KEY)
    with pytest.raises(Refused):
        protocol.verify(
            _request(data={"token_count": 9}, historical_data=[{"v": 1}], auth=auth), KEY
        )


def test_simple_auth_covers_only_the_serial_as_the_standard_warns() -> None:
    auth = protocol.request_signature(_request().raw, AuthMethod.SIMPLE, KEY)
    assert protocol.verify(_request(data={"token_count": 99}, auth=auth), KEY) == "sa"


@pytest.mark.parametrize(
    "body, message",
    [
        (b"\xff\xfe", "UTF-8"),
        (b"{", "not JSON"),
        (b'{"ts": NaN}', "not JSON"),
        (b'{"ts": Infinity}', "not JSON"),
        (b'{"ts": 1e400}', "too large"),
        (b'{"rc": ' + b"9" * 30 + b"}", "too large"),
        (b'{"rc": ' + b"9" * 5000 + b"}", "not JSON"),
        (b'{"sn": "\\ud800"}', "surrogates"),
        (b'{"sn": "A\\u0000"}', "NUL"),
        (b'{"\\u0000": 1}', "NUL"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"d": ' + b"[" * 20 + b"]" * 20 + b"}", "nested"),
    ],
)
def test_json_no_box_sends_or_no_database_stores_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        protocol.load_json(body)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"sn": "A1", "serial_number": "A1"}, "given twice"),
        ({"serial_number": ""}, "serial_number"),
        ({"serial_number": "A" * 41}, "serial_number"),
        ({"serial_number": 12}, "serial_number"),
        ({"timestamp": True}, "timestamp"),
        ({"timestamp": 1.5}, "timestamp"),
        ({"timestamp": 0}, "timestamp"),
        ({"request_count": -1}, "request_count"),
        ({"timestamp": None}, "timestamp or a request_count"),
        ({"data_format_id": 1, "data_format": {}}, "together"),
        ({"data": "x"}, "data must be"),
        ({"historical_data": {"a": 1}}, "historical_data must be"),
        ({"data": {}}, "needs data"),
        ({"auth": 5}, "auth must be text"),
    ],
)
def test_a_malformed_request_is_refused_with_a_reason(raw: dict[str, Any], message: str) -> None:
    body = {"serial_number": "A111222", "timestamp": 1611583070, "data": {"tc": 1}, **raw}
    with pytest.raises(InvalidInput, match=message):
        protocol.parse_request(json.dumps(body).encode())


def test_short_and_long_names_and_the_librarys_dtc_spelling_are_read_alike() -> None:
    short = protocol.parse_request(b'{"sn":"A1","ts":5,"rc":7,"dct":3,"df":2,"d":{"tc":1}}')
    long = protocol.parse_request(
        b'{"serial_number":"A1","timestamp":5,"request_count":7,"data_collection_timestamp":3,'
        b'"data_format_id":2,"data":{"tc":1}}'
    )
    library = protocol.parse_request(b'{"sn":"A1","ts":5,"rc":7,"dtc":3,"df":2,"d":{"tc":1}}')
    for request in (short, long, library):
        assert (request.serial, request.timestamp, request.request_count) == ("A1", 5, 7)
        assert (request.collected_at, request.data_format_id) == (3, 2)
