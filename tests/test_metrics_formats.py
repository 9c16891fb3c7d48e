"""Data formats and the expansion of condensed and historical data into timed readings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpaygo.metrics_request import MetricsRequestHandler
from openpaygo.metrics_response import MetricsResponseHandler

from paygo.errors import InvalidInput
from paygo.metrics import formats, protocol
from paygo.metrics.formats import DataFormat, parse_data_format

KEY_HEX = "bc41ec9530f6dac86b1a29ab82edc5fb"


def _expand(body: dict[str, Any], fmt: DataFormat | None, received_at: int = 1_700_000_000) -> Any:
    request = protocol.parse_request(json.dumps(body).encode())
    return formats.expand(request, fmt, received_at=received_at)


def test_the_order_may_be_a_list_or_an_object_numbered_from_0_or_1() -> None:
    listed = parse_data_format({"data_order": ["token_count", "firmware_version"]})
    from_one = parse_data_format({"data_order": {"1": "token_count", "2": "firmware_version"}})
    from_zero = parse_data_format({"data_order": {"1": "firmware_version", "0": "token_count"}})
    assert listed == from_one == from_zero
    assert listed.digest() == from_zero.digest()


@pytest.mark.parametrize(
    "value, message",
    [
        ([], "JSON object"),
        ({}, "defines nothing"),
        ({"data_order": ["a", "a"]}, "twice"),
        ({"data_order": ["7"]}, "may not be a number"),
        ({"data_order": {"1": "a", "3": "b"}}, "keys 0, 1, 2"),
        ({"data_order": "abc"}, "list"),
        ({"data_order": [""]}, "1 to 64"),
        ({"historical_data_interval": 0}, "whole seconds"),
        ({"historical_data_interval": 1.5}, "whole seconds"),
        ({"historical_data_interval": True}, "whole seconds"),
        ({"variables": {"v": {"type": "float"}}}, "needs a name"),
        ({"variables": {"v": {"name": "V", "type": "complex"}}}, "type must be"),
        ({"variables": {"v": {"name": "V", "aggregation_method": "median"}}}, "must be one of"),
        ({"variables": {"v": {"name": "V", "scale_factor": 0}}}, "non-zero"),
        ({"variables": {"v": {"name": 3}}}, "name must be text"),
        ({"data_order": [f"v{i}" for i in range(101)]}, "at most 100"),
    ],
)
def test_a_bad_data_format_is_refused_with_a_reason(value: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_data_format(value)


def test_simple_data_keeps_its_names_and_short_standard_names_are_made_long() -> None:
    data, readings = _expand(
        {"sn": "A1", "ts": 1_600_000_000, "d": {"tc": 13, "autsr": 1, "tampered": False}}, None
    )
    assert data == {"token_count": 13, "active_until_timestamp_requested": 1, "tampered": False}
    assert [(r.at, r.kind) for r in readings] == [(1_600_000_000, "d")]


def test_the_collection_timestamp_then_the_requests_then_arrival_time_the_data() -> None:
    body = {"sn": "A1", "rc": 3, "d": {"x": 1}}
    assert _expand({**body, "dct": 1_500_000_000, "ts": 1_600_000_000}, None)[1][0].at == (
        1_500_000_000
    )
    assert _expand({**body, "ts": 1_600_000_000}, None)[1][0].at == 1_600_000_000
    assert _expand(body, None, received_at=1_650_000_000)[1][0].at == 1_650_000_000


@pytest.mark.parametrize(
    "body, message",
    [
        ({"d": [1, 2]}, "no data format"),
        ({"df": 1, "d": [1, 2, 3, 4]}, "more values"),
        ({"df": 1, "d": {"9": 1}}, "index 9"),
        ({"df": 1, "d": {"tc": 1, "token_count": 2}}, "twice"),
        ({"df": 1, "d": {"tc": "many"}}, "token_count"),
        ({"df": 1, "hd": [5]}, "historical row 1"),
        ({"df": 1, "hd": [{"timestamp": "noon"}]}, "whole seconds"),
        ({"df": 1, "hd": [{"relative_time": -(10**10)}]}, "whole seconds"),
        ({"df": 1, "hd": [{"timestamp": 5}, {"relative_time": -10}]}, "outside the Unix time"),
        ({"df": 1, "hd": [{"v": 1}] * 10_001}, "at most 10000"),
    ],
)
def test_data_that_does_not_fit_its_format_is_refused(body: dict[str, Any], message: str) -> None:
    fmt = parse_data_format({"data_order": ["token_count", "a", "b"]})
    with pytest.raises(InvalidInput, match=message):
        data, _ = _expand({"sn": "A1", "ts": 1_600_000_000, **body}, fmt if "df" in body else None)
        formats.token_count(data)


def test_a_format_says_how_its_variables_aggregate() -> None:
    fmt = parse_data_format(
        {
            "variables": {
                "energy": {"name": "Energy", "type": "float", "aggregation_method": "sum"},
                "label": {"name": "Label"},
                "amps": {"name": "Amps", "type": "integer", "scale_factor": 0.1},
            }
        }
    )
    assert (fmt.aggregation("energy"), fmt.numeric("energy")) == ("sum", True)
    assert fmt.numeric("label") is False  # described without a type: text, as the standard says
    assert fmt.numeric("undescribed") is True and fmt.aggregation("undescribed") == "average"
    assert fmt.scale("amps") == 0.1 and fmt.scale("energy") == 1.0


# --- against the reference library's own expansion ------------------------------------------

values = st.none() | st.integers(-1000, 1000) | st.floats(-100, 100) | st.booleans()
ORDER = ["a", "b", "c", "d"]


@settings(max_examples=200, deadline=None)
@given(
    interval=st.sampled_from([-300, -60, 60, 600]),
    data=st.dictionaries(st.sampled_from(["token_count", "x", "y"]), values, max_size=3),
    rows=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "a": values,
                "b": values,
                "c": values,
                "relative_time": st.integers(-600, 600),
                "timestamp": st.integers(1_500_000_000, 1_600_000_000),
            },
        ),
        min_size=1,
        max_size=6,
    ),
    ts=st.integers(1_600_000_000, 1_700_000_000),
)
def test_condensed_requests_expand_as_the_reference_library_expands_them(
    interval: int, data: dict[str, Any], rows: list[dict[str, Any]], ts: int
) -> None:
    spec = {
        "data_order": ["token_count", "x", "y"],
        "historical_data_order": [*ORDER, "relative_time", "timestamp"],
        "historical_data_interval": interval,
    }
    box = MetricsRequestHandler("A1", data_format={**spec, "id": 1}, secret_key=KEY_HEX)
    box.set_timestamp(ts)
    box.set_request_count(1)
    box.set_data(data)
    box.set_historical_data([dict(r) for r in rows])
    payload = box.get_condensed_request_payload()
    if not data and not any(rows):
        return  # nothing to send: the standard refuses it
    reference = MetricsResponseHandler(payload, data_format=spec).get_simple_metrics()
    ours, readings = formats.expand(
        protocol.parse_request(payload.encode()), parse_data_format(spec), received_at=0
    )
    assert ours == {k: v for k, v in reference["data"].items() if v is not None}
    expected = []
    for row in reference["historical_data"]:
        at = row.pop("timestamp")
        kept = {k: v for k, v in row.items() if v is not None}
        if kept:
            expected.append((at, kept))
    assert [(r.at, r.values) for r in readings if r.kind == "h"] == expected
