"""Devices and the OpenPAYGO factory CSV format, in and out (no lock-in)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from paygo.crypto import KeyBox
from paygo.errors import Conflict, ImportFailed, InvalidInput, NotFound
from paygo.models import Device, DeviceStatus, utcnow
from paygo.pages import Page, page

FACTORY_HEADER = (
    "Serial Number",
    "Starting Code",
    "Key",
    "Count",
    "Time Divider",
    "Restricted Digit Mode",
    "Hardware Model",
    "Version",
    "Test Code",
)
#: Not in the factory format; written last so other tools can ignore it.
EXTENDED_COLUMN = "Extended Token"
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
#: Cell values longer than this are not echoed in errors: a shifted row may put a key there.
_ECHO_LIMIT = 12
_BATCH = 500


@dataclass(frozen=True)
class DeviceRow:
    """One validated line of a factory file."""

    line: int
    serial: str
    starting_code: int
    key_hex: str = field(repr=False)
    count: int
    time_divider: int
    restricted: bool
    hardware_model: str
    version: str
    test_code: str | None
    extended: bool


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def parse_factory_csv(text: str) -> list[DeviceRow]:
    """Parse and validate a whole factory file; raise ImportFailed listing every bad line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in FACTORY_HEADER if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportFailed(
            f"line 1: missing column(s): {', '.join(missing)}",
            problems=[(1, f"missing column(s): {', '.join(missing)}")],
        )
    rows: list[DeviceRow] = []
    problems: list[tuple[int, str]] = []
    keys_by_serial: dict[str, str] = {}
    for line, raw in enumerate(reader, start=2):
        if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
            continue
        try:
            row = _parse_row(line, raw)
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        seen = keys_by_serial.get(row.serial)
        if seen is not None and seen != row.key_hex:
            problems.append((line, f"serial {row.serial} appears twice with different keys"))
            continue
        keys_by_serial[row.serial] = row.key_hex
        rows.append(row)
    if problems:
        summary = "; ".join(f"line {n}: {msg}" for n, msg in problems[:20])
        raise ImportFailed(
            f"{len(problems)} bad row(s), nothing imported: {summary}", problems=problems
        )
    return rows


def _parse_row(line: int, raw: dict[str, str | None]) -> DeviceRow:
    def cell(name: str) -> str:
        return (raw.get(name) or "").strip()

    serial = cell("Serial Number")
    if not serial or len(serial) > 40:
        raise ValueError("serial number is empty or longer than 40 characters")
    key = cell("Key")
    if not _HEX32.match(key):
        # The key itself is never echoed back, even when it is wrong.
        raise ValueError(
            f"key of {serial} must be 32 hexadecimal characters (got {len(key)} characters)"
        )
    starting_code = _int(cell("Starting Code"), "starting code", 0, 999_999_999)
    count = _int(cell("Count") or "0", "count", 0, 10_000_000)
    divider = _int(cell("Time Divider") or "1", "time divider", 1, 1000)
    test_code = cell("Test Code")
    if test_code and not re.fullmatch(r"\d{1,20}", test_code):
        raise ValueError(f"test code must be up to 20 digits (got {_shown(test_code)})")
    return DeviceRow(
        line=line,
        serial=serial,
        starting_code=starting_code,
        key_hex=key.lower(),
        count=count,
        time_divider=divider,
        restricted=_flag(cell("Restricted Digit Mode"), "restricted digit mode"),
        hardware_model=cell("Hardware Model")[:80],
        version=cell("Version")[:40],
        test_code=test_code or None,
        extended=_flag(cell(EXTENDED_COLUMN), "extended token"),
    )


def _shown(text: str) -> str:
    """Quote a bad cell for an error message, unless it is long enough to be a key."""
    return repr(text) if len(text) <= _ECHO_LIMIT else f"{len(text)} characters"


def _int(text: str, what: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"{what} must be a whole number (got {_shown(text)})")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high} (got {_shown(text)})")
    return value


def _flag(text: str, what: str) -> bool:
    if text.lower() in {"", "0", "false", "no"}:
        return False
    if text.lower() in {"1", "true", "yes"}:
        return True
    raise ValueError(f"{what} must be 0 or 1 (got {_shown(text)})")


def import_devices(
    *,
    session: Session,
    keys: KeyBox,
    rows: Iterable[DeviceRow],
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Create or update devices from parsed rows, all in the caller's transaction."""
    created = updated = unchanged = 0
    problems: list[tuple[int, str]] = []
    rows = list(rows)
    known: dict[str, Device] = {}
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        known.update(_existing(session, {row.serial for row in batch}))
        for row in batch:
            device = known.get(row.serial)
            if device is None:
                known[row.serial] = _new_device(row, keys)
                session.add(known[row.serial])
                created += 1
            elif clash := _identity_clash(device, row, keys):
                problems.append((row.line, f"serial {row.serial} exists with a different {clash}"))
            elif _apply_row(device, row):
                updated += 1
            else:
                unchanged += 1
        if progress is not None:
            progress(len(batch))
    if problems:
        summary = "; ".join(f"line {n}: {msg}" for n, msg in problems[:20])
        raise ImportFailed(
            f"{len(problems)} bad row(s), nothing imported: {summary}", problems=problems
        )
    session.flush()
    return ImportResult(created=created, updated=updated, unchanged=unchanged)


def _existing(session: Session, serials: set[str]) -> dict[str, Device]:
    """The stored devices among these serials, fetched in one query."""
    query = select(Device).where(col(Device.serial).in_(sorted(serials)))
    return {device.serial: device for device in session.exec(query)}


def _new_device(row: DeviceRow, keys: KeyBox) -> Device:
    return Device(
        serial=row.serial,
        secret_key_encrypted=keys.seal(row.key_hex),
        starting_code=row.starting_code,
        token_count=row.count,
        entered_count=row.count,
        time_divider=row.time_divider,
        restricted_digit_mode=row.restricted,
        extended_tokens=row.extended,
        hardware_model=row.hardware_model,
        firmware_version=row.version,
        test_code=row.test_code,
    )


def _identity_clash(device: Device, row: DeviceRow, keys: KeyBox) -> str | None:
    """Name what the row says differently about settings burnt into the box's firmware."""
    # Changing any of these on a known device would make every later token unusable.
    if keys.open(device.secret_key_encrypted) != row.key_hex:
        return "key"
    if device.starting_code != row.starting_code:
        return "starting code"
    if device.time_divider != row.time_divider:
        return "time divider"
    if device.restricted_digit_mode != row.restricted:
        return "restricted digit mode"
    return None


def _apply_row(device: Device, row: DeviceRow) -> bool:
    """Bring a known device up to a file's row; a count never moves backwards."""
    changes = {
        "extended_tokens": row.extended or device.extended_tokens,
        "hardware_model": row.hardware_model or device.hardware_model,
        "firmware_version": row.version or device.firmware_version,
        "test_code": row.test_code or device.test_code,
        "token_count": max(device.token_count, row.count),
        "entered_count": max(device.entered_count, row.count),
    }
    changed = {k: v for k, v in changes.items() if getattr(device, k) != v}
    for name, value in changed.items():
        setattr(device, name, value)
    if changed:
        device.updated_at = utcnow()
    return bool(changed)


def export_devices(*, session: Session, keys: KeyBox) -> Iterator[list[str]]:
    """Yield the header and one factory-format row per device, with its current count."""
    yield [*FACTORY_HEADER, EXTENDED_COLUMN]
    for device in session.exec(select(Device).order_by(Device.serial)):
        yield [
            device.serial,
            str(device.starting_code),
            keys.open(device.secret_key_encrypted),
            str(device.token_count),
            str(device.time_divider),
            "1" if device.restricted_digit_mode else "0",
            device.hardware_model,
            device.firmware_version,
            device.test_code or "",
            "1" if device.extended_tokens else "0",
        ]


def list_devices(
    *,
    session: Session,
    status: str | None = None,
    ids: Iterable[int] | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Device]:
    """Devices by serial, in one status or among `ids`."""
    query = select(Device)
    if status is not None:
        query = query.where(col(Device.status) == status)
    if ids is not None:
        query = query.where(col(Device.id).in_(sorted(ids)))
    return page(
        session=session,
        query=query,
        listing="devices",
        order=[col(Device.serial)],
        key=lambda device: (device.serial,),
        limit=limit,
        cursor=cursor,
        descending=False,
    )


def get_device(*, session: Session, serial: str) -> Device:
    """Find a device by serial number."""
    device = session.exec(select(Device).where(Device.serial == serial.strip())).first()
    if device is None:
        raise NotFound(f"no device with serial {serial!r}", serial=serial)
    return device


def add_device(
    *,
    session: Session,
    keys: KeyBox,
    serial: str,
    key_hex: str,
    starting_code: int,
    time_divider: int = 1,
    restricted: bool = False,
    extended: bool = False,
    hardware_model: str = "",
) -> Device:
    """Register one device (the demo and tests; fleets come in by CSV)."""
    try:
        row = _parse_row(
            0,
            {
                "Serial Number": serial,
                "Key": key_hex,
                "Starting Code": str(starting_code),
                "Count": "0",
                "Time Divider": str(time_divider),
                "Restricted Digit Mode": "1" if restricted else "0",
                "Hardware Model": hardware_model,
                EXTENDED_COLUMN: "1" if extended else "0",
            },
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), serial=serial) from None
    if _existing(session, {row.serial}):
        raise Conflict(f"device {row.serial} exists already", serial=row.serial)
    import_devices(session=session, keys=keys, rows=[row])
    return get_device(session=session, serial=row.serial)


__all__ = [
    "DeviceStatus",
    "FACTORY_HEADER",
    "DeviceRow",
    "ImportResult",
    "parse_factory_csv",
    "import_devices",
    "export_devices",
    "get_device",
    "list_devices",
    "add_device",
]
