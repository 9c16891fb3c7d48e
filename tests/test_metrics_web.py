"""The Metrics server over HTTP, with the reference library's request handler as the box."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from openpaygo.metrics_shared import OpenPAYGOMetricsShared
from sqlmodel import Session, select

from paygo.gateway import Gateway
from paygo.models import AuditLog, Device, DeviceData, MetricsBox, Token
from tests.factories import make_account, make_device
from tests.metrics_box import DD, ConnectedBox
from tests.metrics_helpers import API, api_key, box_state, readings, refusals
from tests.payment_helpers import count, fresh

KEY = "bc41ec9530f6dac86b1a29ab82edc5fb"
OTHER_KEY = "dac86b1a29ab82edc5fbbc41ec9530f6"
METHODS = ("sa", "ta", "ca", "da", "ra")


@pytest.fixture
def device(session: Session, gateway: Gateway) -> Device:
    device = make_device(session, gateway, key_hex=KEY, starting_code=516959010)
    session.commit()
    return device


@pytest.fixture
def box(client: FlaskClient, device: Device, gateway: Gateway) -> ConnectedBox:
    return ConnectedBox.of(client, device, gateway.keys)


def _issued(session: Session, gateway: Gateway, device: Device, counts: list[int]) -> None:
    """Tokens stored as if issued at these counts (codes are made up; order is the point)."""
    assert device.id is not None
    for n in counts:
        session.add(Token(device_id=device.id, count=n, type="add_time", days=1, code=f"{n:09d}"))
    stored = session.get(Device, device.id)
    assert stored is not None
    stored.token_count = max(counts)
    session.add(stored)
    session.commit()


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("condensed", [False, True], ids=["simple", "condensed"])
def test_each_auth_method_is_verified_and_the_data_stored(
    box: ConnectedBox, session: Session, device: Device, method: str, condensed: bool
) -> None:
    box.auth = method
    if condensed:
        box.data_format = {  # sent inline (dfo)
            "data_order": ["token_count", "firmware"],
            "historical_data_order": ["timestamp", "panel_voltage"],
        }
    answer = box.report(
        {"token_count": 0, "firmware": "1.4.2"},
        historical=[{"timestamp": box.clock - 60, "panel_voltage": 17.5}],
        condensed=condensed,
    )
    assert answer["sn"] == device.serial and answer["tkl"] == []
    stored = readings(session, device.id)
    assert [(r.kind, r.data) for r in stored] == [
        ("h", {"panel_voltage": 17.5}),
        ("d", {"token_count": 0, "firmware": "1.4.2"}),
    ]
    state = box_state(session, device.id)
    assert state is not None and state.last_request_count == 1
    assert state.last_timestamp == box.clock and state.reported_token_count == 0


@pytest.mark.parametrize("method", METHODS)
def test_a_request_signed_with_another_key_is_refused_and_nothing_is_written(
    box: ConnectedBox, session: Session, device: Device, method: str
) -> None:
    response = box.post(box.build({"token_count": 3}, auth=method, key_hex=OTHER_KEY))
    assert response.status_code == 403
    assert response.get_json() == {"error": "forbidden", "message": "authentication failed"}
    assert readings(session, device.id) == [] and box_state(session, device.id) is None
    assert fresh(session, Device, device.id).entered_count == 0
    assert [(r["target"], r["reason"]) for r in refusals(session)] == [
        (device.serial, "wrong signature")
    ]


def test_an_unknown_serial_is_refused_exactly_like_a_wrong_key(
    client: FlaskClient, session: Session
) -> None:
    stranger = ConnectedBox(client, serial="NOSUCHBOX", key_hex=KEY)
    response = stranger.post(stranger.build({"token_count": 1}))
    assert response.status_code == 403
    assert response.get_json() == {"error": "forbidden", "message": "authentication failed"}
    assert [r["reason"] for r in refusals(session)] == ["unknown serial"]
    assert count(session, MetricsBox) == 0 and count(session, DeviceData) == 0


def test_a_request_without_auth_or_with_an_unknown_method_is_refused(
    box: ConnectedBox, session: Session, device: Device
) -> None:
    unsigned = json.loads(box.build())
    del unsigned["auth"]
    assert box.post(json.dumps(unsigned)).status_code == 403
    unsigned["auth"] = "zz1234"
    unsigned["request_count"] = 99
    assert box.post(json.dumps(unsigned)).status_code == 403
    assert readings(session, device.id) == []


def test_refusals_leave_one_audit_line_a_box_and_kind_per_window(
    box: ConnectedBox, session: Session, client: FlaskClient
) -> None:
    for _ in range(5):
        assert box.post(box.build(key_hex=OTHER_KEY)).status_code == 403
    stranger = ConnectedBox(client, serial="NOSUCHBOX", key_hex=KEY)
    for _ in range(3):
        assert stranger.post(stranger.build({"token_count": 1})).status_code == 403
    assert sorted(r["reason"] for r in refusals(session)) == ["unknown serial", "wrong signature"]


def test_with_redis_the_refusal_window_is_shared_by_every_worker(
    redis_app: Flask, make_app: Callable[..., Flask], redis_url: str, session: Session
) -> None:
    device = make_device(session, redis_app.extensions["paygo"], key_hex=KEY)
    session.commit()
    for app in (redis_app, make_app(redis_url=redis_url)):  # two workers: two apps, one Redis
        other = ConnectedBox(app.test_client(), serial=device.serial, key_hex=OTHER_KEY)
        assert other.post(other.build({"token_count": 1})).status_code == 403
    assert len(refusals(session)) == 1


# --- replays --------------------------------------------------------------------------------


def test_a_replayed_request_count_is_refused_and_stores_nothing(
    box: ConnectedBox, session: Session, device: Device
) -> None:
    box.auth = "ca"
    first = box.build({"token_count": 0}, timestamp=False)
    assert box.post(first).status_code == 201
    before = readings(session, device.id)
    response = box.post(first)
    assert response.status_code == 409
    assert response.get_json()["error"] == "replayed"
    box.request_count = 0  # a box whose counter went back
    older = box.build({"token_count": 0, "other": 1}, timestamp=False)
    assert box.post(older).status_code == 409
    assert readings(session, device.id) == before
    assert [r["target"] for r in refusals(session)] == [device.serial]  # one line a window


def test_a_replayed_timestamp_is_refused(box: ConnectedBox, session: Session) -> None:
    box.auth = "ta"
    first = box.build({"token_count": 0}, count=False)
    assert box.post(first).status_code == 201
    assert box.post(first).status_code == 409
    box.clock -= 600  # an older request signed properly is not newer either
    assert box.post(box.build({"token_count": 0}, count=False)).status_code == 409
    box.clock += 1200
    assert box.post(box.build({"token_count": 0}, count=False)).status_code == 201


def test_a_timestamp_a_day_ahead_of_the_server_cannot_lock_the_box_out(
    box: ConnectedBox, session: Session, device: Device
) -> None:
    box.clock = int((datetime.now(UTC) + timedelta(days=2)).timestamp())
    response = box.post(box.build())
    assert response.status_code == 400 and "ahead" in response.get_json()["message"]
    assert box_state(session, device.id) is None


def test_historical_rows_sent_again_with_a_new_request_are_stored_once(
    box: ConnectedBox, session: Session, device: Device
) -> None:
    now = int(datetime.now(UTC).timestamp())
    rows = [{"timestamp": now - 600 + 60 * i, "load": i} for i in range(5)]
    box.report({"token_count": 0}, historical=rows[:3])
    # The answer was lost: the box keeps its data and sends it again with the next rows.
    box.report({"token_count": 0}, historical=rows)
    stored = [r for r in readings(session, device.id) if r.kind == "h"]
    assert [r.data["load"] for r in stored] == [0, 1, 2, 3, 4]


# --- the answer -----------------------------------------------------------------------------


def test_the_answer_lists_the_codes_above_the_boxs_count_oldest_first(
    box: ConnectedBox, session: Session, gateway: Gateway, device: Device
) -> None:
    _issued(session, gateway, device, [2, 4, 6, 8])
    assert box.report({"token_count": 4})["tkl"] == [6, 8]
    assert box.report({"token_count": 8})["tkl"] == []
    assert box.report({"token_count": 0})["tkl"] == [2, 4, 6, 8]
    assert fresh(session, Device, device.id).entered_count == 0  # exactly what it reported


def test_a_box_ahead_of_the_server_is_kept_as_reported_and_known_up_to_the_servers_count(
    box: ConnectedBox, session: Session, gateway: Gateway, device: Device
) -> None:
    _issued(session, gateway, device, [2, 4])
    assert box.report({"token_count": 9})["tkl"] == []
    assert fresh(session, Device, device.id).entered_count == 4
    state = box_state(session, device.id)
    assert state is not None and state.reported_token_count == 9


def test_active_until_and_seconds_left_come_from_the_accounts_credit(
    box: ConnectedBox, session: Session, gateway: Gateway, device: Device
) -> None:
    account = make_account(session, gateway, device=device)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    account.credit_until = until
    session.add(account)
    session.commit()
    answer = box.report({"active_until_timestamp_requested": True})
    assert answer["auts"] == int(until.timestamp())
    answer = box.report({"aslr": 1})
    left = timedelta(seconds=answer["asl"])
    assert timedelta(days=3) - timedelta(minutes=1) < left <= timedelta(days=3)
    assert "tkl" not in answer  # no token count reported, no codes asked for


def test_a_box_without_an_account_is_active_until_zero(box: ConnectedBox) -> None:
    assert box.report({"autsr": True})["auts"] == 0


# --- data formats ---------------------------------------------------------------------------

SPEC_FORMAT = {
    "data_order": ["token_count", "tampered", "firmware_version"],
    "historical_data_interval": -60,
    "historical_data_order": [
        "panel_voltage",
        "battery_voltage",
        "panel_current",
        "battery_current",
        "usb_load_1_current",
        "usb_load_2_current",
        "overload_alert",
        "timestamp",
    ],
    "variables": {
        "battery_current": {
            "name": "Battery Current",
            "type": "float",
            "unit": "A",
            "description": "The current coming out of the battery, negative means it is charging.",
        }
    },
}


def test_a_data_format_is_registered_once_with_an_operator_key(
    client: FlaskClient, session: Session
) -> None:
    headers = api_key(session, "operator")
    first = client.post(f"{API}/data_format", json=SPEC_FORMAT, headers=headers)
    assert first.status_code == 201
    reordered = dict(reversed(list(SPEC_FORMAT.items())))
    again = client.post(f"{API}/data_format", json=reordered, headers=headers)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert client.post(f"{API}/data_format", json=SPEC_FORMAT).status_code == 401
    viewer = api_key(session, "viewer")
    assert client.post(f"{API}/data_format", json=SPEC_FORMAT, headers=viewer).status_code == 403
    wrong = {"Authorization": "Bearer pg_not-a-key"}
    assert client.post(f"{API}/data_format", json=SPEC_FORMAT, headers=wrong).status_code == 401


def test_condensed_data_with_a_registered_format_is_stored_under_its_names(
    box: ConnectedBox, client: FlaskClient, session: Session, gateway: Gateway, device: Device
) -> None:
    headers = api_key(session)
    format_id = client.post(f"{API}/data_format", json=SPEC_FORMAT, headers=headers).get_json()
    box.data_format = {**SPEC_FORMAT, **format_id}
    _issued(session, gateway, device, [2])
    payload = box.build(
        {"token_count": 0, "tampered": False, "firmware_version": "1.14.2"},
        historical=[
            {"panel_voltage": 17.5, "battery_voltage": 12.5, "panel_current": 2.2},
            {"panel_voltage": 15.7, "battery_voltage": 12.6, "usb_load_1_current": 0.7},
        ],
        condensed=True,
    )
    sent = json.loads(payload)
    assert sent["df"] == format_id["id"] and sent["d"] == [0, False, "1.14.2"]
    response = box.post(payload)
    assert response.status_code == 201 and response.get_json()["tkl"] == [2]
    stored = readings(session, device.id)
    history = [(r.at, r.data) for r in stored if r.kind == "h"]
    base = datetime.fromtimestamp(box.clock, UTC)
    assert history == [
        (
            base - timedelta(seconds=60),
            {"panel_voltage": 15.7, "battery_voltage": 12.6, "usb_load_1_current": 0.7},
        ),
        (base, {"panel_voltage": 17.5, "battery_voltage": 12.5, "panel_current": 2.2}),
    ]
    current = [r.data for r in stored if r.kind == "d"]
    assert current == [{"token_count": 0, "tampered": False, "firmware_version": "1.14.2"}]


def test_an_unknown_data_format_id_is_a_clear_400(box: ConnectedBox, session: Session) -> None:
    box.data_format = {**SPEC_FORMAT, "id": 4242}
    response = box.post(box.build({"token_count": 0}, condensed=True))
    assert response.status_code == 400
    assert "no data format 4242" in response.get_json()["message"]


def test_historical_rows_get_timestamps_from_interval_relative_time_and_index_keys(
    box: ConnectedBox, client: FlaskClient, session: Session, device: Device
) -> None:
    format_id = client.post(
        f"{API}/data_format", json=SPEC_FORMAT, headers=api_key(session)
    ).get_json()["id"]
    ts = box.clock + 60
    # The specification's own condensed example, signed by the box.
    body = {
        "sn": device.serial,
        "ts": ts,
        "rc": 1,
        "df": format_id,
        "d": [13, 0, "1.14.2"],
        "hd": [
            [17.5, 12.5, 2.2, 3.2],
            [15.7, 12.6, 2.2, 3.2, 0.7],
            {"7": ts - 3600, "6": 1},
            [15.7, 12.6, 2.2, 3.2, 0.8],
            {"relative_time": -30, "0": 16.0},
        ],
    }
    raw = {
        "serial_number": device.serial,
        "timestamp": ts,
        "request_count": 1,
        "data": body["d"],
        "historical_data": body["hd"],
    }
    body["a"] = OpenPAYGOMetricsShared.generate_request_signature_from_data(raw, "ra", KEY)
    response = box.post(json.dumps(body))
    assert response.status_code == 201, response.get_json()
    history = [
        (int(r.at.timestamp()) - ts, r.data) for r in readings(session, device.id) if r.kind == "h"
    ]
    assert sorted(history, key=lambda h: h[0], reverse=True) == [
        (
            0,
            {
                "panel_voltage": 17.5,
                "battery_voltage": 12.5,
                "panel_current": 2.2,
                "battery_current": 3.2,
            },
        ),
        (
            -60,
            {
                "panel_voltage": 15.7,
                "battery_voltage": 12.6,
                "panel_current": 2.2,
                "battery_current": 3.2,
                "usb_load_1_current": 0.7,
            },
        ),
        (-3600, {"overload_alert": 1}),
        (
            -3660,
            {
                "panel_voltage": 15.7,
                "battery_voltage": 12.6,
                "panel_current": 2.2,
                "battery_current": 3.2,
                "usb_load_1_current": 0.8,
            },
        ),
        (-3690, {"panel_voltage": 16.0}),
    ]


def test_historical_rows_without_time_and_without_interval_are_refused(
    box: ConnectedBox, session: Session, device: Device
) -> None:
    raw = json.loads(box.build({"token_count": 0}, auth="ca"))
    raw["historical_data"] = [{"v": 1}, {"v": 2}]  # ca does not sign the data
    response = box.post(json.dumps(raw))
    assert response.status_code == 400 and "historical row 2" in response.get_json()["message"]
    assert readings(session, device.id) == []


# --- moving a box ---------------------------------------------------------------------------


def test_a_moved_box_gets_base_url_in_its_signed_answers_until_the_move_is_cancelled(
    box: ConnectedBox, runner: FlaskCliRunner, session: Session, gateway: Gateway, device: Device
) -> None:
    assert "st" not in box.report()
    moved = runner.invoke(
        args=[
            "devices",
            "move-server",
            device.serial,
            "https://metrics.other.example/v1/",
            "--reason",
            "distributor changed platform",
        ]
    )
    assert moved.exit_code == 0, moved.output
    _issued(session, gateway, device, [2])
    answer = box.report()  # report() checks the signature with the reference library
    assert answer["st"] == {"base_url": "https://metrics.other.example/v1/"}
    assert answer["tkl"] == [2]  # the codes still come, wherever it goes next
    assert box.report({"token_count": 2})["st"]["base_url"].startswith("https://metrics.other")
    lines = session.exec(select(AuditLog).where(AuditLog.action == "device.move_server")).all()
    assert len(lines) == 1 and "distributor changed platform" in lines[0].detail
    cancel = runner.invoke(
        args=["devices", "move-server", device.serial, "--cancel", "--reason", "customer stays"]
    )
    assert cancel.exit_code == 0, cancel.output
    assert "st" not in box.report({"token_count": 2})


def test_moving_needs_a_reason_and_a_plain_url(
    runner: FlaskCliRunner, device: Device, session: Session
) -> None:
    assert (
        runner.invoke(args=["devices", "move-server", device.serial, "https://x.example"]).exit_code
        == 2
    )
    bad = runner.invoke(
        args=["devices", "move-server", device.serial, "https://x y", "--reason", "r"]
    )
    assert bad.exit_code == 1 and "base URL" in bad.output
    assert (
        runner.invoke(
            args=["devices", "move-server", "NOPE", "https://x.example", "--reason", "r"]
        ).exit_code
        == 1
    )
    assert box_state(session, device.id) is None


# --- reading stored data back ---------------------------------------------------------------


def test_get_dd_returns_a_boxs_data_in_the_simple_form_to_an_api_key(
    box: ConnectedBox, client: FlaskClient, session: Session, device: Device
) -> None:
    now = int(datetime.now(UTC).timestamp())
    box.report({"token_count": 0, "fw": "2"}, historical=[{"timestamp": now - 300, "v": 1}])
    query = {"serial_number": device.serial}
    assert client.get(f"{API}/dd", query_string=query).status_code == 401
    response = client.get(f"{API}/dd", query_string=query, headers=api_key(session, "viewer"))
    assert response.status_code == 200
    assert response.get_json() == {
        "serial_number": device.serial,
        "data": {"token_count": 0, "fw": "2"},
        "data_collection_timestamp": box.clock,
        "historical_data": [{"timestamp": now - 300, "v": 1}],
    }
    earlier = {**query, "to_datetime": datetime.fromtimestamp(now - 3 * 3600, UTC).isoformat()}
    empty = client.get(f"{API}/device_data", query_string=earlier, headers=api_key(session))
    assert empty.get_json()["historical_data"] == [] and empty.get_json()["data"] == {}


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"serial_number": "NOSUCHBOX"},
        {"serial_number": "A\x00B"},
        {"serial_number": "A" * 200},
        {"serial_number": "X", "from_datetime": "yesterday"},
        {"serial_number": "X", "from_datetime": "2026-01-02", "to_datetime": "2026-01-01"},
        {"serial_number": "X", "from_datetime": "2020-01-01", "to_datetime": "2026-01-01"},
    ],
)
def test_get_dd_with_bad_parameters_is_a_clear_4xx(
    client: FlaskClient, session: Session, query: dict[str, str]
) -> None:
    response = client.get(f"{API}/dd", query_string=query, headers=api_key(session))
    assert response.status_code in (400, 404) and response.get_json()["message"]


# --- the envelope ---------------------------------------------------------------------------


def test_cbor_is_refused_with_415_and_a_huge_body_with_413(
    box: ConnectedBox, client: FlaskClient
) -> None:
    cbor = client.post(DD, data=b"\xa1", content_type="application/cbor")
    assert cbor.status_code == 415 and cbor.get_json()["message"]
    huge = client.post(DD, data=b"[" + b"1," * (2_200_000) + b"1]", content_type="application/json")
    assert huge.status_code == 413


def test_a_large_request_within_the_standards_4096_kb_is_accepted(
    box: ConnectedBox, session: Session, device: Device
) -> None:
    now = int(datetime.now(UTC).timestamp())
    rows = [{"timestamp": now - 100_000 + i * 10, "note": "x" * 30} for i in range(9_000)]
    payload = box.build({"token_count": 0}, historical=rows, auth="ca")
    assert 256 * 1024 < len(payload) < 4096 * 1024
    assert box.post(payload).status_code == 201
    assert len(readings(session, device.id)) == 9_001
