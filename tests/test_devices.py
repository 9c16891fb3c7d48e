"""Devices in and out in the OpenPAYGO factory CSV format: all or nothing, no lock-in."""

from __future__ import annotations

import csv
import json
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlmodel import Session, select

from paygo import devices
from paygo.errors import Conflict, ImportFailed, InvalidInput, NotFound
from paygo.gateway import Gateway
from paygo.models import Device, DeviceStatus
from tests.conftest import TEST_SETTINGS
from tests.factories import make_device

HEADER = ",".join(devices.FACTORY_HEADER)
KEY_A = "bc41ec9530f6dac86b1a29ab82edc5fb"
KEY_B = "dac86b1a29ab82edc5fbbc41ec9530f6"


def _csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def _write(path: Path, *rows: str) -> Path:
    path.write_text(_csv(*rows), encoding="utf-8")
    return path


def _count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Device)).one())


def _import(session: Session, gateway: Gateway, text: str) -> devices.ImportResult:
    return devices.import_devices(
        session=session, keys=gateway.keys, rows=devices.parse_factory_csv(text)
    )


# --- parsing -----------------------------------------------------------------------------


def test_the_reference_factory_file_parses_into_its_devices(shared_dir: Path) -> None:
    text = (shared_dir / "openpaygo" / "example_device_list.csv").read_text()
    first, second = devices.parse_factory_csv(text)
    assert (first.serial, first.starting_code, first.key_hex, first.count) == (
        "SLT220000001",
        516959010,
        KEY_A,
        1,
    )
    assert (first.time_divider, first.restricted, first.hardware_model, first.version) == (
        4,
        True,
        "SuperLight",
        "X20",
    )
    assert first.test_code is None and second.test_code == "999333777"
    assert second.restricted is False and first.line == 2 and second.line == 3


def test_blank_lines_a_byte_order_mark_and_upper_case_keys_are_accepted() -> None:
    text = "\ufeff" + _csv(f"S1,1,{KEY_A.upper()},0,1,0,M,V,", ",,,,,,,,", "")
    (row,) = devices.parse_factory_csv(text)
    assert row.key_hex == KEY_A


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (f"S1,1,{KEY_A[:30]},0,1,0,M,V,", "key of S1 must be 32 hexadecimal characters (got 30"),
        (f"S1,1,{KEY_A[:31]}z,0,1,0,M,V,", "key of S1 must be 32 hexadecimal characters"),
        ("S1,1,,0,1,0,M,V,", "key of S1 must be 32 hexadecimal characters (got 0"),
        (f"S1,abc,{KEY_A},0,1,0,M,V,", "starting code must be a whole number (got 'abc')"),
        (f"S1,-5,{KEY_A},0,1,0,M,V,", "starting code must be a whole number"),
        (f"S1,1234567890,{KEY_A},0,1,0,M,V,", "starting code must be between 0 and 999999999"),
        (f"S1,1,{KEY_A},1.5,1,0,M,V,", "count must be a whole number (got '1.5')"),
        (f"S1,1,{KEY_A},0,0,0,M,V,", "time divider must be between 1 and 1000"),
        (f"S1,1,{KEY_A},0,1,2,M,V,", "restricted digit mode must be 0 or 1 (got '2')"),
        (f"S1,1,{KEY_A},0,1,0,M,V,12ab", "test code must be up to 20 digits"),
        (f",1,{KEY_A},0,1,0,M,V,", "serial number is empty"),
        (f"{'S' * 41},1,{KEY_A},0,1,0,M,V,", "longer than 40 characters"),
    ],
)
def test_a_bad_row_is_reported_with_its_line_number(row: str, problem: str) -> None:
    good = f"OK1,1,{KEY_B},0,1,0,M,V,"
    with pytest.raises(ImportFailed) as caught:
        devices.parse_factory_csv(_csv(good, row))
    ((line, message),) = caught.value.problems
    assert line == 3
    assert problem in message
    assert "nothing imported" in caught.value.message


def test_every_bad_row_is_reported_not_just_the_first() -> None:
    with pytest.raises(ImportFailed) as caught:
        devices.parse_factory_csv(
            _csv("S1,x,,0,1,0,M,V,", f"S2,1,{KEY_A},0,1,0,M,V,", f"S3,1,{KEY_A},y,1,0,M,V,")
        )
    assert [line for line, _ in caught.value.problems] == [2, 4]


def test_a_serial_twice_in_a_file_with_different_keys_is_refused() -> None:
    with pytest.raises(ImportFailed) as caught:
        devices.parse_factory_csv(_csv(f"S1,1,{KEY_A},0,1,0,M,V,", f"S1,1,{KEY_B},0,1,0,M,V,"))
    assert caught.value.problems == [(3, "serial S1 appears twice with different keys")]


def test_a_file_missing_a_column_is_refused_at_line_one() -> None:
    header = HEADER.replace(",Time Divider", "")
    with pytest.raises(ImportFailed) as caught:
        devices.parse_factory_csv(_csv(f"S1,1,{KEY_A},0,0,M,V,", header=header))
    assert caught.value.problems == [(1, "missing column(s): Time Divider")]
    with pytest.raises(ImportFailed, match="line 1"):
        devices.parse_factory_csv("")


# --- importing ---------------------------------------------------------------------------


def test_import_creates_in_stock_devices_with_their_keys_encrypted(
    session: Session, gateway: Gateway, shared_dir: Path
) -> None:
    text = (shared_dir / "openpaygo" / "example_device_list.csv").read_text()
    result = _import(session, gateway, text)
    assert result == devices.ImportResult(created=2, updated=0, unchanged=0)
    device = devices.get_device(session=session, serial="SLT240000002")
    assert device.status == DeviceStatus.IN_STOCK
    assert (device.token_count, device.entered_count, device.time_divider) == (1, 1, 4)
    assert device.test_code == "999333777" and device.hardware_model == "SuperLight"
    assert KEY_B not in device.secret_key_encrypted
    assert gateway.keys.open(device.secret_key_encrypted) == KEY_B


def test_reimporting_the_same_file_changes_nothing(
    session: Session, gateway: Gateway, shared_dir: Path
) -> None:
    text = (shared_dir / "openpaygo" / "example_device_list.csv").read_text()
    _import(session, gateway, text)
    before = {d.serial: d.model_dump() for d in session.exec(select(Device))}
    assert _import(session, gateway, text) == devices.ImportResult(0, 0, 2)
    session.expire_all()
    assert {d.serial: d.model_dump() for d in session.exec(select(Device))} == before


def test_a_known_device_with_a_different_key_fails_the_whole_file(
    session: Session, gateway: Gateway
) -> None:
    _import(session, gateway, _csv(f"S1,1,{KEY_A},0,1,0,M,V,"))
    with pytest.raises(ImportFailed) as caught:
        _import(session, gateway, _csv(f"NEW,1,{KEY_A},0,1,0,M,V,", f"S1,1,{KEY_B},0,1,0,M,V,"))
    assert caught.value.problems == [(3, "serial S1 exists with a different key")]


@pytest.mark.parametrize(
    ("row", "what"),
    [
        (f"S1,2,{KEY_A},0,1,0,M,V,", "starting code"),
        (f"S1,1,{KEY_A},0,4,0,M,V,", "time divider"),
        (f"S1,1,{KEY_A},0,1,1,M,V,", "restricted digit mode"),
    ],
)
def test_a_known_device_cannot_change_what_its_firmware_holds(
    session: Session, gateway: Gateway, row: str, what: str
) -> None:
    _import(session, gateway, _csv(f"S1,1,{KEY_A},0,1,0,M,V,"))
    with pytest.raises(ImportFailed, match=f"line 2: serial S1 exists with a different {what}"):
        _import(session, gateway, _csv(row))


def test_a_higher_count_in_a_file_moves_the_device_on_but_never_back(
    session: Session, gateway: Gateway
) -> None:
    _import(session, gateway, _csv(f"S1,1,{KEY_A},10,1,0,M,V,"))
    assert _import(session, gateway, _csv(f"S1,1,{KEY_A},3,1,0,M,V,")).unchanged == 1
    assert _import(session, gateway, _csv(f"S1,1,{KEY_A},12,1,0,M2,V2,")).updated == 1
    device = devices.get_device(session=session, serial="S1")
    assert (device.token_count, device.entered_count) == (12, 12)
    assert (device.hardware_model, device.firmware_version) == ("M2", "V2")


def test_a_thousand_devices_import_in_one_go(session: Session, gateway: Gateway) -> None:
    rows = [f"BULK{i:05d},{i},{secrets.token_hex(16)},0,1,0,M,V," for i in range(1000)]
    ticks: list[int] = []
    result = devices.import_devices(
        session=session,
        keys=gateway.keys,
        rows=devices.parse_factory_csv(_csv(*rows)),
        progress=ticks.append,
    )
    assert result.created == 1000 and sum(ticks) == 1000
    assert _count(session) == 1000


# --- exporting ---------------------------------------------------------------------------


def test_export_writes_the_factory_format_with_each_current_count(
    session: Session, gateway: Gateway, shared_dir: Path
) -> None:
    _import(session, gateway, (shared_dir / "openpaygo" / "example_device_list.csv").read_text())
    devices.get_device(session=session, serial="SLT220000001").token_count = 9
    header, *rows = devices.export_devices(session=session, keys=gateway.keys)
    assert tuple(header[:9]) == devices.FACTORY_HEADER
    assert rows[0][:9] == [
        "SLT220000001",
        "516959010",
        KEY_A,
        "9",
        "4",
        "1",
        "SuperLight",
        "X20",
        "",
    ]
    assert rows[1][:9] == [
        "SLT240000002",
        "432435255",
        KEY_B,
        "1",
        "4",
        "0",
        "SuperLight",
        "X40",
        "999333777",
    ]


def test_importing_an_export_gives_back_the_same_devices(
    session: Session, gateway: Gateway
) -> None:
    made = [
        make_device(
            session,
            gateway,
            restricted=i % 2 == 0,
            extended=i == 1,
            time_divider=i + 1,
            hardware_model=f"HW{i}",
        )
        for i in range(3)
    ]
    made[0].token_count = 17
    session.flush()
    text = "".join(
        ",".join(r) + "\n" for r in devices.export_devices(session=session, keys=gateway.keys)
    )
    before = {d.serial: _identity(d, gateway) for d in made}
    for device in made:
        session.delete(device)
    session.flush()
    assert _import(session, gateway, text).created == 3
    after = {d.serial: _identity(d, gateway) for d in session.exec(select(Device))}
    assert after == before


def _identity(device: Device, gateway: Gateway) -> tuple[object, ...]:
    return (
        gateway.keys.open(device.secret_key_encrypted),
        device.starting_code,
        device.token_count,
        device.time_divider,
        device.restricted_digit_mode,
        device.extended_tokens,
        device.hardware_model,
        device.firmware_version,
        device.test_code,
    )


# --- one device --------------------------------------------------------------------------


def test_add_device_refuses_a_serial_that_exists(session: Session, gateway: Gateway) -> None:
    device = make_device(session, gateway)
    with pytest.raises(Conflict, match=f"device {device.serial} exists already"):
        make_device(session, gateway, serial=device.serial)


def test_add_device_refuses_a_bad_key_without_showing_it(
    session: Session, gateway: Gateway
) -> None:
    with pytest.raises(InvalidInput) as caught:
        make_device(session, gateway, key_hex="zz" + KEY_A[2:])
    assert KEY_A[2:] not in str(caught.value)


def test_get_device_names_the_missing_serial(session: Session) -> None:
    with pytest.raises(NotFound, match="no device with serial 'NOPE'"):
        devices.get_device(session=session, serial="NOPE")


# --- the CLI -----------------------------------------------------------------------------


def test_cli_import_reports_what_it_did_and_reimport_is_harmless(
    runner: FlaskCliRunner, shared_dir: Path
) -> None:
    path = str(shared_dir / "openpaygo" / "example_device_list.csv")
    first = runner.invoke(args=["devices", "import", path])
    assert first.exit_code == 0, first.output
    assert first.stdout == "2 created, 0 updated, 0 unchanged\n"
    again = runner.invoke(args=["devices", "import", path, "--json"])
    assert json.loads(again.stdout) == {"created": 0, "updated": 0, "unchanged": 2}


def test_cli_import_of_a_bad_file_lists_each_bad_line_and_imports_nothing(
    runner: FlaskCliRunner, tmp_path: Path, session: Session
) -> None:
    path = _write(
        tmp_path / "bad.csv",
        f"GOOD1,1,{KEY_A},0,1,0,M,V,",
        f"BAD1,1,{KEY_B[:20]},0,1,0,M,V,",
        f"BAD2,1,{KEY_B},many,1,0,M,V,",
    )
    result = runner.invoke(args=["devices", "import", str(path), "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: line 3: key of BAD1 must be 32 hexadecimal characters" in result.stderr
    assert "error: line 4: count must be a whole number (got 'many')" in result.stderr
    assert "2 bad row(s); nothing was imported" in result.stderr
    assert _count(session) == 0


def test_cli_import_is_all_or_nothing_when_a_late_row_clashes_with_the_database(
    runner: FlaskCliRunner, tmp_path: Path, session: Session
) -> None:
    runner.invoke(
        args=["devices", "import", str(_write(tmp_path / "a.csv", f"OLD,1,{KEY_A},0,1,0,M,V,"))]
    )
    rows = [f"NEW{i:04d},1,{secrets.token_hex(16)},0,1,0,M,V," for i in range(700)]
    path = _write(tmp_path / "b.csv", *rows, f"OLD,1,{KEY_B},0,1,0,M,V,")
    result = runner.invoke(args=["devices", "import", str(path)])
    assert result.exit_code == 1
    assert "error: line 702: serial OLD exists with a different key" in result.stderr
    assert _count(session) == 1


def test_cli_import_refuses_a_file_that_is_not_utf8(runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(_csv(f"S\xe9,1,{KEY_A},0,1,0,M,V,").encode("latin-1"))
    result = runner.invoke(args=["devices", "import", str(path)])
    assert result.exit_code == 1
    assert "is not UTF-8 text" in result.stderr


def test_cli_import_of_a_missing_file_says_so(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["devices", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_cli_export_writes_an_owner_only_file_that_imports_back(
    runner: FlaskCliRunner, shared_dir: Path, tmp_path: Path, session: Session
) -> None:
    runner.invoke(
        args=["devices", "import", str(shared_dir / "openpaygo" / "example_device_list.csv")]
    )
    out = tmp_path / "fleet.csv"
    result = runner.invoke(args=["devices", "export", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"exported": 2, "path": str(out)}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with out.open(newline="") as f:
        exported = list(csv.DictReader(f))
    assert [r["Key"] for r in exported] == [KEY_A, KEY_B]
    again = runner.invoke(args=["devices", "import", str(out), "--json"])
    assert json.loads(again.stdout) == {"created": 0, "updated": 0, "unchanged": 2}


def test_cli_export_to_a_missing_folder_is_a_clear_error(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(args=["devices", "export", str(tmp_path / "no" / "fleet.csv")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: No such file or directory")


def test_cli_list_shows_devices_without_their_keys(
    runner: FlaskCliRunner, shared_dir: Path
) -> None:
    assert runner.invoke(args=["devices", "list"]).stdout == "no devices\n"
    runner.invoke(
        args=["devices", "import", str(shared_dir / "openpaygo" / "example_device_list.csv")]
    )
    listed = json.loads(runner.invoke(args=["devices", "list", "--json"]).stdout)["devices"]
    assert [d["serial"] for d in listed] == ["SLT220000001", "SLT240000002"]
    assert all("secret_key_encrypted" not in d for d in listed)
    in_stock = runner.invoke(args=["devices", "list", "--status", "in_stock"]).stdout
    assert in_stock.splitlines()[1].split()[:3] == ["SLT220000001", "in_stock", "1"]
    bad = runner.invoke(args=["devices", "list", "--status", "lost"])
    assert bad.exit_code == 2 and "'lost' is not one of" in bad.stderr


def test_cli_import_shows_a_progress_bar_on_a_terminal(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "fleet.csv",
        *(f"TTY{i:03d},{i},{secrets.token_hex(16)},0,1,0,M,V," for i in range(250)),
    )
    output = _run_on_a_terminal(["devices", "import", str(path)], database_url, tmp_path)
    assert "importing" in output and "100%" in output
    assert "250 created, 0 updated, 0 unchanged" in output


def _run_on_a_terminal(args: Sequence[str], database_url: str, tmp_path: Path) -> str:
    """Run `paygo ARGS` with stdout on a pseudo-terminal; return what it printed."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PAYGO_INSTANCE_PATH": str(tmp_path),
        "PAYGO_MASTER_KEY": TEST_SETTINGS["master_key"],
        "COLUMNS": "100",
    }
    primary, secondary = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from paygo.cli import main; main()", *args],
        stdout=secondary,
        stderr=secondary,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(secondary)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closes when the command exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=60) == 0, b"".join(chunks).decode()
    return b"".join(chunks).decode(errors="replace")
