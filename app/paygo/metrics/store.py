"""Connected boxes in the database: their Metrics state, readings, data formats and moves.

Typed queries, the session passed in. Tokens are only read here (the codes a box has not
applied yet); issuing them stays with the token module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from paygo import audit
from paygo.errors import InvalidInput, NotFound
from paygo.metrics.formats import CURRENT, HISTORICAL, DataFormat, Reading, parse_data_format
from paygo.models import (
    Account,
    AccountStatus,
    Device,
    DeviceData,
    MetricsBox,
    MetricsDataFormat,
    Token,
)

#: Most codes one answer carries; a box further behind gets the rest on its next request.
MAX_TOKENS = 50
#: Most readings one read of stored data returns.
MAX_READ = 10_000
#: `active_until_timestamp` for a paid-off box: the standard has no "for good", so the
#: latest 32-bit Unix time (2038-01-19) stands for it.
FOREVER = 2**31 - 1
MAX_BASE_URL = 255


@dataclass(frozen=True)
class Box:
    """A device as the Metrics server needs it for one request."""

    device_id: int
    serial: str
    sealed_key: str = field(repr=False)
    token_count: int
    entered_count: int
    known: bool  # it has reported before (a metrics_boxes row exists)
    base_url: str | None


def find_box(*, session: Session, serial: str) -> Box | None:
    """The device with this exact serial and its Metrics state, in one query."""
    row = session.execute(
        sa.select(
            col(Device.id),
            col(Device.serial),
            col(Device.secret_key_encrypted),
            col(Device.token_count),
            col(Device.entered_count),
            col(MetricsBox.device_id),
            col(MetricsBox.base_url),
        )
        .outerjoin(MetricsBox, col(MetricsBox.device_id) == col(Device.id))
        .where(col(Device.serial) == serial)
    ).first()
    if row is None:
        return None
    ident, serial, sealed, count, entered, known, base_url = row
    assert ident is not None
    return Box(ident, serial, sealed, count, entered, known is not None, base_url)


def accept_request(
    *,
    session: Session,
    box: Box,
    timestamp: int | None,
    request_count: int | None,
    now: datetime,
    reported_count: int | None,
    data_format_id: int | None,
) -> bool:
    """Record a request as the box's latest, unless it is not newer (a replay): False then.

    One conditional UPDATE: two copies of a request racing each other cannot both pass.
    """
    if not box.known:
        insert = _insert(session).values(device_id=box.device_id, first_seen_at=now)
        session.execute(insert.on_conflict_do_nothing(index_elements=["device_id"]))
    table = MetricsBox.__table__  # type: ignore[attr-defined]
    query = sa.update(table).where(table.c.device_id == box.device_id)
    values: dict[str, Any] = {"last_seen_at": now}
    for column, value in (("last_request_count", request_count), ("last_timestamp", timestamp)):
        if value is not None:
            last = table.c[column]
            query = query.where(sa.or_(last.is_(None), last < value))
            values[column] = value
    if reported_count is not None:
        values["reported_token_count"] = reported_count
    if data_format_id is not None:
        values["data_format_id"] = data_format_id
    result: Any = session.execute(query.values(**values))
    return bool(result.rowcount == 1)


def _insert(session: Session) -> Any:
    table = MetricsBox.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def store_readings(
    *, session: Session, device_id: int, readings: Iterable[Reading], now: datetime
) -> None:
    """Store readings; one already stored for the same device, time and kind is kept as is."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for reading in readings:
        key = (reading.at, reading.kind)
        rows.setdefault(
            key,
            {
                "device_id": device_id,
                "at": datetime.fromtimestamp(reading.at, UTC),
                "kind": reading.kind,
                "data": reading.values,
                "received_at": now,
            },
        )
    if not rows:
        return
    table = DeviceData.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    session.execute(insert.on_conflict_do_nothing(), list(rows.values()))


def record_box_count(*, session: Session, box: Box, count: int) -> None:
    """Record the count a box reported as the count known on it (never above the server's).

    A box reporting more than the server issued took codes from elsewhere; the report is
    kept on its Metrics row, and the count known on the box stops at the server's.
    """
    if box.entered_count == min(count, box.token_count):
        return
    known = sa.case((col(Device.token_count) < count, col(Device.token_count)), else_=count)
    session.execute(
        sa.update(Device).where(col(Device.id) == box.device_id).values(entered_count=known)
    )


def codes_above(*, session: Session, device_id: int, count: int) -> list[int]:
    """The codes issued for a device above a count, oldest first, as numbers."""
    codes = session.exec(
        select(Token.code)
        .where(Token.device_id == device_id)
        .where(col(Token.count) > count)
        .order_by(col(Token.count))
        .limit(MAX_TOKENS)
    ).all()
    return [int(code) for code in codes]


def active_until(*, session: Session, device_id: int) -> int:
    """Until when (Unix seconds) the box's current account has credit; 0 for none."""
    row = session.exec(
        select(Account.status, Account.credit_until)
        .where(Account.device_id == device_id)
        .order_by(col(Account.id).desc())
        .limit(1)
    ).first()
    if row is None:
        return 0
    status, credit_until = row
    if status == AccountStatus.PAID_OFF:
        return FOREVER
    if status in (AccountStatus.REPOSSESSED, AccountStatus.CLOSED) or credit_until is None:
        return 0
    return int(credit_until.timestamp())


# --- data formats ---------------------------------------------------------------------------


def register_format(*, session: Session, fmt: DataFormat, actor: str, now: datetime) -> int:
    """Store a data format once and return its id (the same format again: the same id)."""
    table = MetricsDataFormat.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    digest = fmt.digest()
    session.execute(
        insert.values(
            digest=digest, body=fmt.canonical(), created_by=actor[:80], created_at=now
        ).on_conflict_do_nothing(index_elements=["digest"])
    )
    ident = session.exec(
        select(MetricsDataFormat.id).where(MetricsDataFormat.digest == digest)
    ).one()
    assert ident is not None
    return ident


def get_format(*, session: Session, format_id: int) -> DataFormat:
    """A registered data format; InvalidInput when there is none with this id."""
    body = session.exec(
        select(MetricsDataFormat.body).where(MetricsDataFormat.id == format_id)
    ).first()
    if body is None:
        raise InvalidInput(
            f"no data format {format_id} is registered here", data_format_id=format_id
        )
    return parse_data_format(json.loads(body))


def box_format(*, session: Session, device_id: int) -> DataFormat | None:
    """The data format a box used last, if any."""
    body = session.exec(
        select(MetricsDataFormat.body)
        .join(MetricsBox, col(MetricsBox.data_format_id) == col(MetricsDataFormat.id))
        .where(MetricsBox.device_id == device_id)
    ).first()
    return None if body is None else parse_data_format(json.loads(body))


# --- reading stored data --------------------------------------------------------------------


@dataclass(frozen=True)
class StoredData:
    """A box's stored readings in a time range: the newest current data, then its history."""

    current: DeviceData | None
    history: Sequence[DeviceData]


def read_data(*, session: Session, device_id: int, start: datetime, end: datetime) -> StoredData:
    """A box's readings from `start` to `end` (inclusive); at most MAX_READ of them."""
    in_range = (
        select(DeviceData)
        .where(DeviceData.device_id == device_id)
        .where(col(DeviceData.at) >= start)
        .where(col(DeviceData.at) <= end)
    )
    history = session.exec(
        in_range.where(DeviceData.kind == HISTORICAL)
        .order_by(col(DeviceData.at))
        .limit(MAX_READ + 1)
    ).all()
    if len(history) > MAX_READ:
        raise InvalidInput(f"more than {MAX_READ} readings in this range; ask for a shorter one")
    current = session.exec(
        in_range.where(DeviceData.kind == CURRENT).order_by(col(DeviceData.at).desc()).limit(1)
    ).first()
    return StoredData(current=current, history=history)


# --- operators ------------------------------------------------------------------------------


def move_server(
    *,
    session: Session,
    serial: str,
    base_url: str | None,
    reason: str,
    actor: str,
    now: datetime,
) -> MetricsBox:
    """Send a box to another Metrics server: every answer carries `base_url` from now on.

    `base_url` None cancels a move the box has not acted on yet. Audited with the reason.
    """
    if not reason.strip():
        raise InvalidInput("say why: --reason is required to move a box")
    if base_url is not None:
        base_url = check_base_url(base_url)
    device = session.exec(select(Device).where(Device.serial == serial.strip())).first()
    if device is None or device.id is None:
        raise NotFound(f"no device with serial {serial!r}", serial=serial)
    box = session.get(MetricsBox, device.id) or MetricsBox(device_id=device.id)
    previous = box.base_url
    box.base_url, box.moved_at = base_url, now if base_url else None
    session.add(box)
    audit.record(
        session=session,
        actor=actor,
        action="device.move_server" if base_url else "device.move_server_cancelled",
        target_type="device",
        target_id=device.serial,
        reason=reason,
        base_url=base_url,
        previous=previous,
    )
    session.flush()
    return box


def check_base_url(url: str) -> str:
    """A base URL as the box will get it: printable, no spaces, at most 255 characters."""
    url = url.strip()
    if not url or len(url) > MAX_BASE_URL or not url.isprintable() or " " in url:
        raise InvalidInput(
            f"the base URL must be 1 to {MAX_BASE_URL} printable characters, no spaces"
        )
    if not url.isascii():
        raise InvalidInput("the base URL must be ASCII (write an international domain in punycode)")
    return url


@dataclass(frozen=True)
class Report:
    """When a connected box last reported, and whether it has gone silent."""

    last_seen_at: datetime
    silent: bool
    reported_token_count: int | None
    base_url: str | None


def reports(*, session: Session, now: datetime, silent_after: timedelta) -> dict[int, Report]:
    """The Metrics reports of every connected box, by device id."""
    query = select(MetricsBox).where(col(MetricsBox.last_seen_at).is_not(None))
    out = {}
    for box in session.exec(query):
        assert box.last_seen_at is not None
        out[box.device_id] = Report(
            last_seen_at=box.last_seen_at,
            silent=box.last_seen_at < now - silent_after,
            reported_token_count=box.reported_token_count,
            base_url=box.base_url,
        )
    return out


def silent_boxes(*, session: Session, now: datetime, silent_after: timedelta) -> list[str]:
    """Serials of connected boxes that have not reported for longer than `silent_after`."""
    return list(
        session.exec(
            select(Device.serial)
            .join(MetricsBox, col(MetricsBox.device_id) == col(Device.id))
            .where(col(MetricsBox.last_seen_at) < now - silent_after)
            .order_by(col(MetricsBox.last_seen_at))
        ).all()
    )
