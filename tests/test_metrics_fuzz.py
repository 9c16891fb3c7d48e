"""Fuzzed bodies and parameters on every Metrics route: a clear 4xx, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from paygo.gateway import Gateway
from paygo.models import Device
from tests.factories import make_device
from tests.metrics_box import DD, ConnectedBox
from tests.metrics_helpers import API, api_key, readings

KEY = "bc41ec9530f6dac86b1a29ab82edc5fb"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALLOWED = {201, 400, 403, 409, 413, 415}

nasty_text = st.sampled_from(["\ud800", "a\x00b", "", "x" * 5000, "٣", "\U0001f600", "7"])
#: What a URL can carry (no lone surrogates: percent-decoding replaces them).
query_text = st.text(st.characters(codec="utf-8"), max_size=50) | st.sampled_from(
    ["a\x00b", "x" * 5000, "7", "", "2026-13-01"]
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20)
    | nasty_text
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = ["sn", "serial_number", "ts", "rc", "a", "d", "hd", "df", "dfo", "dct", "acc", "auth"]


@pytest.fixture
def device(session: Session, gateway: Gateway) -> Device:
    device = make_device(session, gateway, key_hex=KEY)
    session.commit()
    return device


@pytest.fixture
def headers(session: Session) -> dict[str, str]:
    """An operator's API key (made once per test, used by every example)."""
    return api_key(session)


def _dumps(value: Any) -> bytes:
    # Lone surrogates and NaN go over the wire as JSON escapes and literals, as a sender may.
    return json.dumps(value, allow_nan=True).encode()


@FUZZ
@given(body=st.binary(max_size=300) | json_values.map(_dumps))
def test_any_body_gets_a_clear_4xx(client: FlaskClient, body: bytes) -> None:
    response = client.post(DD, data=body, content_type="application/json")
    assert response.status_code in ALLOWED
    assert response.get_json()["message"]


@FUZZ
@given(
    method=st.sampled_from(["sa", "ta", "ca", "da", "ra"]),
    field=st.sampled_from(KEYS),
    value=json_values,
    drop=st.booleans(),
)
def test_a_valid_request_with_one_field_broken_never_gets_a_5xx(
    client: FlaskClient, device: Device, method: str, field: str, value: Any, drop: bool
) -> None:
    box = ConnectedBox(client, serial=device.serial, key_hex=KEY, auth=method)
    body = json.loads(box.build({"token_count": 0, "v": 1.5}))
    if drop:
        body.pop(field, None)
    else:
        body[field] = value
    response = client.post(DD, data=_dumps(body), content_type="application/json")
    assert response.status_code in ALLOWED, response.get_data(as_text=True)


@FUZZ
@given(body=json_values)
def test_any_data_format_gets_201_or_a_clear_4xx(
    client: FlaskClient, headers: dict[str, str], body: Any
) -> None:
    response = client.post(
        f"{API}/data_format", data=_dumps(body), content_type="application/json", headers=headers
    )
    assert response.status_code in {201, 400, 413}, response.get_data(as_text=True)


@FUZZ
@given(
    serial=query_text,
    start=query_text | st.datetimes().map(lambda d: d.isoformat()),
    end=query_text | st.datetimes().map(lambda d: d.isoformat()),
)
def test_any_read_parameters_get_200_or_a_clear_4xx(
    client: FlaskClient, headers: dict[str, str], serial: str, start: str, end: str
) -> None:
    query = {"serial_number": serial, "from_datetime": start, "to_datetime": end}
    response = client.get(f"{API}/dd", query_string=query, headers=headers)
    assert response.status_code in {200, 400, 404}, response.get_data(as_text=True)


def test_nothing_is_stored_from_a_refused_request_even_with_valid_looking_data(
    client: FlaskClient, session: Session, device: Device
) -> None:
    box = ConnectedBox(client, serial=device.serial, key_hex="00" * 16, auth="ra")
    for _ in range(3):
        assert box.post(box.build({"token_count": 0, "v": 1})).status_code == 403
    assert readings(session, device.id) == []
