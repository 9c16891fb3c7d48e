"""A box's usage aggregated in SQL by hour and by day, as the operator API will serve it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from paygo.errors import InvalidInput, NotFound
from paygo.gateway import Gateway
from paygo.metrics import store
from paygo.metrics.formats import CURRENT, HISTORICAL, Reading, parse_data_format
from paygo.metrics.usage import usage
from paygo.models import Device
from tests.factories import make_device

DAY = datetime(2026, 11, 20, tzinfo=UTC)
FORMAT = {
    "variables": {
        "energy_wh": {"name": "Energy", "type": "float", "aggregation_method": "sum"},
        "battery_v": {"name": "Battery", "type": "float"},
        "load_a": {
            "name": "Load",
            "type": "integer",
            "scale_factor": 0.1,
            "aggregation_method": "max",
        },
        "mode": {"name": "Mode"},  # text: not aggregated
        "peak_w": {"name": "Peak", "type": "float", "aggregation_method": "latest"},
    }
}


def _at(hours: float) -> int:
    return int((DAY + timedelta(hours=hours)).timestamp())


@pytest.fixture
def device(session: Session, gateway: Gateway) -> Device:
    device = make_device(session, gateway)
    assert device.id is not None
    format_id = store.register_format(
        session=session, fmt=parse_data_format(FORMAT), actor="test", now=DAY
    )
    rows = [
        Reading(
            _at(0.25), HISTORICAL, {"energy_wh": 10, "battery_v": 12.0, "load_a": 5, "mode": "eco"}
        ),
        Reading(_at(0.75), HISTORICAL, {"energy_wh": 20, "battery_v": 13.0, "load_a": 9}),
        Reading(_at(1.5), HISTORICAL, {"energy_wh": 5, "battery_v": "n/a", "peak_w": 40}),
        Reading(_at(1.5), CURRENT, {"token_count": 12, "undescribed": 2}),
        Reading(_at(26), HISTORICAL, {"energy_wh": 7, "battery_v": 12.5, "load_a": True}),
        Reading(_at(49), HISTORICAL, {"energy_wh": 1000}),  # outside the range asked
    ]
    box = store.find_box(session=session, serial=device.serial)
    assert box is not None
    report = store.BoxReport(
        timestamp=None,
        request_count=1,
        reported_count=None,
        data_format_id=format_id,
        readings=rows,
    )
    assert store.record_report(session=session, box=box, report=report, now=DAY)
    session.commit()
    return device


def test_usage_by_hour_aggregates_each_variable_its_own_way(
    session: Session, device: Device
) -> None:
    result = usage(
        session=session, serial=device.serial, start=DAY, end=DAY + timedelta(hours=30), every="1h"
    )
    assert result.aggregations == {
        "battery_v": "average",
        "energy_wh": "sum",
        "load_a": "max",
        "undescribed": "average",
    }
    assert [(b.start, b.readings, b.values) for b in result.buckets] == [
        (
            DAY,
            2,
            {
                "battery_v": 12.5,
                "energy_wh": 30.0,
                "load_a": pytest.approx(0.9),
                "undescribed": None,
            },
        ),
        (
            DAY + timedelta(hours=1),
            2,
            {"battery_v": None, "energy_wh": 5.0, "load_a": None, "undescribed": 2.0},
        ),
        (
            DAY + timedelta(hours=26),
            1,
            {"battery_v": 12.5, "energy_wh": 7.0, "load_a": None, "undescribed": None},
        ),
    ]


def test_usage_by_day_sums_the_days_energy_in_utc_days(session: Session, device: Device) -> None:
    result = usage(
        session=session, serial=device.serial, start=DAY, end=DAY + timedelta(days=2), every="1d"
    )
    assert [(b.start, b.readings, b.values["energy_wh"]) for b in result.buckets] == [
        (DAY, 4, 35.0),
        (DAY + timedelta(days=1), 1, 7.0),
    ]
    assert result.to_json()["buckets"][0]["start"] == "2026-11-20T00:00:00+00:00"


def test_an_empty_range_has_no_buckets(session: Session, device: Device) -> None:
    result = usage(
        session=session,
        serial=device.serial,
        start=DAY - timedelta(days=3),
        end=DAY - timedelta(days=2),
        every="1h",
    )
    assert result.buckets == [] and result.aggregations == {}


@pytest.mark.parametrize(
    "every, span, error",
    [("15m", 1, InvalidInput), ("1h", 400, InvalidInput), ("1h", -1, InvalidInput)],
)
def test_a_bad_step_or_range_is_refused(
    session: Session, device: Device, every: str, span: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        usage(
            session=session,
            serial=device.serial,
            start=DAY,
            end=DAY + timedelta(days=span),
            every=every,
        )


def test_an_unknown_box_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        usage(session=session, serial="NOSUCHBOX", start=DAY, end=DAY, every="1d")
