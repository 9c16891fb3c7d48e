"""A device's secret key never shows: not in logs, CLI output (but export), errors or reprs."""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import text
from sqlmodel import Session, SQLModel, select

from paygo import devices
from paygo.crypto import KeyBox
from paygo.errors import ConfigurationError, GatewayError, ImportFailed, InvalidInput
from paygo.gateway import Gateway
from paygo.models import Device
from tests.factories import make_device, make_plan

HEADER = ",".join(devices.FACTORY_HEADER)


@pytest.fixture
def key() -> str:
    """A fresh device key for this test: any sighting of it is a leak."""
    return secrets.token_hex(16)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every log record, SQLAlchemy's statements and parameters included."""
    # SQLAlchemy pins its own logger at WARNING: open it up too, as a debugging operator would.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="sqlalchemy"):
        yield caplog


def _leaks(key: str, *texts: str) -> list[str]:
    """The texts that hold the key, in any case, as hex or as its raw bytes' repr."""
    raw = repr(bytes.fromhex(key))[2:-1]
    return [t[:200] for t in texts if key in t.lower() or (len(raw) > 8 and raw in t)]


def _fleet(tmp_path: Path, key: str, name: str = "fleet.csv", serial: str = "SEC1") -> Path:
    path = tmp_path / name
    path.write_text(f"{HEADER}\n{serial},123456789,{key},0,4,0,SHS,1.0,\n", encoding="utf-8")
    return path


def _invoke(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    return result.output + (result.stderr or "")


def test_the_cli_never_prints_a_key_except_in_an_export_file(
    runner: FlaskCliRunner,
    gateway: Gateway,
    tmp_path: Path,
    key: str,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    with gateway.db.transaction() as session:
        make_plan(session, name="Basic")
    fleet = str(_fleet(tmp_path, key))
    outputs = [
        _invoke(runner, "devices", "import", fleet),
        _invoke(runner, "devices", "import", fleet, "--json"),
        _invoke(runner, "devices", "list"),
        _invoke(runner, "devices", "list", "--json"),
        _invoke(
            runner,
            "accounts",
            "create",
            "--name",
            "A",
            "--phone",
            "+254711000001",
            "--device",
            "SEC1",
            "--plan",
            "Basic",
        ),
        _invoke(runner, "accounts", "show", "10000004"),
        _invoke(runner, "accounts", "show", "10000004", "--json"),
        _invoke(runner, "devices", "export", str(tmp_path / "out.csv")),
        _invoke(runner, "devices", "export", str(tmp_path / "out2.csv"), "--json"),
    ]
    assert "10000004" in outputs[4]
    assert _leaks(key, *outputs) == []
    assert _leaks(key, debug_logs.text) == []
    # The capture saw the device written and read back, parameters and rows included.
    assert "INSERT INTO devices" in debug_logs.text and "secret_key_encrypted" in debug_logs.text
    assert key in (tmp_path / "out.csv").read_text()


def test_import_errors_never_show_the_new_or_the_stored_key(
    runner: FlaskCliRunner, tmp_path: Path, key: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    other = secrets.token_hex(16)
    runner.invoke(args=["devices", "import", str(_fleet(tmp_path, key))])
    clash = _fleet(tmp_path, other, name="clash.csv")
    bad_key = _fleet(tmp_path, key[:-1] + "g", name="badkey.csv", serial="SEC2")
    short = _fleet(tmp_path, key[:30], name="short.csv", serial="SEC3")
    shifted = tmp_path / "shifted.csv"  # a missing comma pushes the key into Count
    shifted.write_text(f"{HEADER}\nSEC4,1,{other},{key},1,0,M,V,\n", encoding="utf-8")
    outputs = [
        _invoke(runner, "devices", "import", str(p), *flag)
        for p in (clash, bad_key, short, shifted)
        for flag in ((), ("--json",))
    ]
    assert all("error: line 2" in out for out in outputs)
    assert "SELECT" in debug_logs.text  # the stored key was read to compare: logged or not
    assert _leaks(key, *outputs, debug_logs.text) == []
    assert _leaks(other, *outputs, debug_logs.text) == []
    assert _leaks(key[:30], *outputs) == []


def test_domain_errors_and_their_tracebacks_never_hold_a_key(
    session: Session, gateway: Gateway, key: str
) -> None:
    device = make_device(session, gateway, key_hex=key)
    errors: list[GatewayError] = []
    for attempt in (
        lambda: devices.import_devices(
            session=session,
            keys=gateway.keys,
            rows=[
                devices.DeviceRow(
                    line=2,
                    serial=device.serial,
                    starting_code=1,
                    key_hex=secrets.token_hex(16),
                    count=0,
                    time_divider=1,
                    restricted=False,
                    hardware_model="",
                    version="",
                    test_code=None,
                    extended=False,
                )
            ],
        ),
        lambda: make_device(session, gateway, key_hex=key[:-2] + "zz"),
        lambda: make_device(session, gateway, key_hex=key + "00"),
        lambda: KeyBox("some-other-master-key").open(device.secret_key_encrypted),
        lambda: devices.parse_factory_csv(f"{HEADER}\nX,1,{key},{key},1,0,M,V,{key}\n"),
    ):
        with pytest.raises(GatewayError) as caught:
            attempt()
        errors.append(caught.value)
    assert [type(e) for e in errors] == [
        ImportFailed,
        InvalidInput,
        InvalidInput,
        ConfigurationError,
        ImportFailed,
    ]
    shown = [
        "".join(traceback.format_exception(e))
        + repr(e)
        + str(e.to_dict())
        + repr(getattr(e, "problems", ""))
        for e in errors
    ]
    assert _leaks(key, *shown) == []


def test_reprs_of_devices_rows_and_the_key_box_hide_the_key(
    session: Session, gateway: Gateway, key: str
) -> None:
    device = make_device(session, gateway, key_hex=key)
    (row,) = devices.parse_factory_csv(f"{HEADER}\nR1,1,{key},0,1,0,M,V,\n")
    texts = [
        repr(device),
        str(device),
        repr(row),
        str(row),
        repr(gateway.keys),
        repr(devices.ImportResult(1, 0, 0)),
    ]
    assert _leaks(key, *texts) == []
    assert device.secret_key_encrypted not in repr(device)
    assert "test-master-key" not in repr(gateway.keys)


def test_keys_are_encrypted_at_rest_in_every_table(
    session: Session, gateway: Gateway, key: str
) -> None:
    make_device(session, gateway, key_hex=key)
    session.commit()
    dump: list[str] = []
    for table in SQLModel.metadata.sorted_tables:
        dump += [repr(tuple(row)) for row in session.execute(text(f"SELECT * FROM {table}"))]
    assert dump and _leaks(key, *dump) == []
    stored = session.exec(select(Device)).one()
    assert gateway.keys.open(stored.secret_key_encrypted) == key


def test_no_web_page_shows_a_key(app: Flask, gateway: Gateway, key: str) -> None:
    with gateway.db.transaction() as session:
        make_device(session, gateway, key_hex=key)
    client = app.test_client()
    pages = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set()) and not rule.arguments
    ]
    assert "/healthz" in pages
    bodies = [client.get(page).get_data(as_text=True) for page in pages]
    assert _leaks(key, *bodies) == []
