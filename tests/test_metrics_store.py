"""Connected boxes in the database: silent boxes, the device listing, storage on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from sqlmodel import Session

from paygo.gateway import Gateway
from paygo.metrics import store
from paygo.models import Device, MetricsBox
from tests.factories import make_device


def _reported(session: Session, device: Device, ago: timedelta, **fields: Any) -> None:
    assert device.id is not None
    seen = datetime.now(UTC) - ago
    session.add(MetricsBox(device_id=device.id, last_seen_at=seen, **fields))


@pytest.fixture
def fleet(session: Session, gateway: Gateway) -> dict[str, Device]:
    """A box silent for three days, one that reported an hour ago, and one with no modem."""
    devices = {
        name: make_device(session, gateway, serial=name) for name in ("QUIET", "LIVE", "KEYPAD")
    }
    _reported(session, devices["QUIET"], timedelta(days=3), reported_token_count=4)
    _reported(session, devices["LIVE"], timedelta(hours=1), base_url="https://next.example/m/")
    session.commit()
    return devices


def test_a_box_silent_longer_than_the_setting_is_found_and_one_without_a_modem_is_not(
    session: Session, fleet: dict[str, Device]
) -> None:
    now = datetime.now(UTC)
    assert store.silent_boxes(session=session, now=now, silent_after=timedelta(hours=48)) == [
        "QUIET"
    ]
    assert store.silent_boxes(session=session, now=now, silent_after=timedelta(minutes=30)) == [
        "QUIET",
        "LIVE",
    ]
    found = store.reports(session=session, now=now, silent_after=timedelta(hours=48))
    assert {
        fleet[n].id: r.silent for n in ("QUIET", "LIVE") for r in [found[fleet[n].id or 0]]
    } == {
        fleet["QUIET"].id: True,
        fleet["LIVE"].id: False,
    }
    assert fleet["KEYPAD"].id not in found


def test_devices_list_shows_when_each_box_reported_and_flags_the_silent_one(
    make_app: Callable[..., Flask], session: Session, gateway: Gateway, fleet: dict[str, Device]
) -> None:
    runner = make_app(metrics_silent_after_hours=48).test_cli_runner()
    listed = runner.invoke(args=["devices", "list"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines()}
    assert "SILENT: no report for 3 d 0 h" in lines["QUIET"]
    assert "reported 1 h ago" in lines["LIVE"] and "https://next.example/m/" in lines["LIVE"]
    assert "report" not in lines["KEYPAD"]
    silent = json.loads(runner.invoke(args=["devices", "list", "--silent", "--json"]).output)
    assert [(d["serial"], d["silent"], d["reported_token_count"]) for d in silent["devices"]] == [
        ("QUIET", True, 4)
    ]
    relaxed = make_app(metrics_silent_after_hours=100).test_cli_runner()
    assert "no devices" in relaxed.invoke(args=["devices", "list", "--silent"]).output


def test_a_data_format_is_stored_once_however_often_it_is_registered(session: Session) -> None:
    from paygo.metrics.formats import parse_data_format

    now = datetime.now(UTC)
    fmt = parse_data_format({"data_order": ["token_count", "v"]})
    first = store.register_format(session=session, fmt=fmt, actor="a", now=now)
    again = store.register_format(session=session, fmt=fmt, actor="b", now=now)
    other = parse_data_format({"data_order": ["v", "token_count"]})
    assert first == again != store.register_format(session=session, fmt=other, actor="c", now=now)
    assert store.get_format(session=session, format_id=first) == fmt


def test_device_data_is_indexed_by_time_with_brin_on_postgresql(
    session: Session, gateway: Gateway
) -> None:
    if gateway.db.dialect == "postgresql":
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_device_data_at'"
        assert "USING brin (at)" in session.execute(text(query)).scalar_one()
    else:  # SQLite, for development: an ordinary index
        query = "SELECT sql FROM sqlite_master WHERE name = 'ix_device_data_at'"
        assert "(at)" in session.execute(text(query)).scalar_one()
