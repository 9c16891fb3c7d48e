"""Connected boxes in the database: their Metrics state, readings, data formats and moves.

Typed queries, the session passed in. Tokens are only read here (the codes a box has not
applied yet); issuing them stays with the token module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
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
    UTCDateTime,
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


@dataclass(frozen=True)
class BoxReport:
    """What one verified request brings: its replay guards, the box's count, its readings."""

    timestamp: int | None
    request_count: int | None
    reported_count: int | None
    data_format_id: int | None
    readings: Sequence[Reading]


# The hot path's statements are built once: SQLAlchemy caches their compiled form, and
# building a statement costs more CPU than its round trip to the database on loopback.
_BOXES = MetricsBox.__table__  # type: ignore[attr-defined]
_DATA = DeviceData.__table__  # type: ignore[attr-defined]
_DEVICES = Device.__table__  # type: ignore[attr-defined]
_TOKENS = Token.__table__  # type: ignore[attr-defined]
_DEVICE_ID = sa.bindparam("b_device_id", type_=sa.Integer)
_COUNT = sa.bindparam("b_count", type_=sa.Integer)
_RC = sa.bindparam("b_rc", type_=sa.BigInteger)
_TS = sa.bindparam("b_ts", type_=sa.BigInteger)
_NOW = sa.bindparam("b_now", type_=UTCDateTime)
_REPORTED = sa.bindparam("b_reported", type_=sa.Integer)
_FIND_BOX = (
    sa.select(
        _DEVICES.c.id,
        _DEVICES.c.serial,
        _DEVICES.c.secret_key_encrypted,
        _DEVICES.c.token_count,
        _DEVICES.c.entered_count,
        _BOXES.c.device_id,
        _BOXES.c.base_url,
    )
    .outerjoin(_BOXES, _BOXES.c.device_id == _DEVICES.c.id)
    .where(_DEVICES.c.serial == sa.bindparam("b_serial", type_=sa.String))
)
# Newer on each guard the request carries (a NULL parameter: a guard it does not carry).
# One conditional UPDATE: two copies of a request racing each other cannot both pass.
_ACCEPT = (
    sa.update(_BOXES)
    .where(_BOXES.c.device_id == _DEVICE_ID)
    .where(
        sa.or_(
            _RC.is_(None),
            _BOXES.c.last_request_count.is_(None),
            _BOXES.c.last_request_count < _RC,
        )
    )
    .where(sa.or_(_TS.is_(None), _BOXES.c.last_timestamp.is_(None), _BOXES.c.last_timestamp < _TS))
    .values(
        last_seen_at=_NOW,
        last_request_count=sa.func.coalesce(_RC, _BOXES.c.last_request_count),
        last_timestamp=sa.func.coalesce(_TS, _BOXES.c.last_timestamp),
        reported_token_count=sa.func.coalesce(_REPORTED, _BOXES.c.reported_token_count),
        data_format_id=sa.func.coalesce(
            sa.bindparam("b_format", type_=sa.Integer), _BOXES.c.data_format_id
        ),
    )
)
# The count known on the box: what it reported, never above the server's own count.
_KNOWN = sa.case((_DEVICES.c.token_count < _REPORTED, _DEVICES.c.token_count), else_=_REPORTED)
_RECORD_COUNT = (
    sa.update(_DEVICES)
    .where(_DEVICES.c.id == _DEVICE_ID)
    .where(_REPORTED.is_not(None))
    .where(_DEVICES.c.entered_count != _KNOWN)
    .values(entered_count=_KNOWN)
)
_ACCOUNTS = Account.__table__  # type: ignore[attr-defined]
# The box's current account is its newest.
_ACCOUNT = (
    sa.select(_ACCOUNTS.c.status, _ACCOUNTS.c.credit_until)
    .where(_ACCOUNTS.c.device_id == _DEVICE_ID)
    .order_by(_ACCOUNTS.c.id.desc())
    .limit(1)
)
_CODES = (
    sa.select(_TOKENS.c.code)
    .where(_TOKENS.c.device_id == _DEVICE_ID)
    .where(_TOKENS.c.count > _COUNT)
    .order_by(_TOKENS.c.count)
    .limit(MAX_TOKENS)
)


def _report_in_one_statement() -> Any:
    """PostgreSQL: the replay guard, the readings and the box's count in one statement.

    Data-modifying CTEs run to completion together, atomically, in one round trip; the
    readings are written only when the guard accepted the request.
    """
    ok = _ACCEPT.returning(_BOXES.c.device_id).cte("ok")
    rows = (
        sa.func.jsonb_to_recordset(sa.bindparam("b_readings", type_=JSONB))
        .table_valued(
            sa.column("at", sa.BigInteger), sa.column("kind", sa.String), sa.column("data", JSONB)
        )
        .render_derived(name="r", with_types=True)
    )
    stored = (
        postgresql.insert(_DATA)
        .from_select(
            ["device_id", "at", "kind", "data", "received_at"],
            sa.select(
                ok.c.device_id, sa.func.to_timestamp(rows.c.at), rows.c.kind, rows.c.data, _NOW
            )
            .select_from(ok)
            .join(rows, sa.true()),
        )
        .on_conflict_do_nothing()
        .cte("stored")
    )
    counted = _RECORD_COUNT.where(_DEVICES.c.id.in_(sa.select(ok.c.device_id))).cte("counted")
    return sa.select(sa.func.count()).select_from(ok).add_cte(stored, counted)


_REPORT = _report_in_one_statement()


#: The hot path's queries take a session or, cheaper, its Core connection: the ORM's
#: execute adds about as much CPU again as the statement's own round trip on loopback.
Connectable = Session | sa.Connection


def _core(session: Connectable) -> sa.Connection:
    return session if isinstance(session, sa.Connection) else session.connection()


@cache
def _insert_ignoring_copies(dialect: str, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for this dialect (built once per table)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()


def find_box(*, session: Connectable, serial: str) -> Box | None:
    """The device with this exact serial and its Metrics state, in one query."""
    row = _core(session).execute(_FIND_BOX, {"b_serial": serial}).first()
    if row is None:
        return None
    ident, serial, sealed, count, entered, known, base_url = row
    return Box(ident, serial, sealed, count, entered, known is not None, base_url)


def record_report(*, session: Connectable, box: Box, report: BoxReport, now: datetime) -> bool:
    """Store a verified request: False, and nothing written, when it is not newer (a replay).

    Readings already stored for the same device, time and kind are kept as they are. The
    count the box reported becomes the count known on it, up to the server's own.
    """
    conn = _core(session)
    dialect = conn.dialect.name
    if not box.known:
        first = {"device_id": box.device_id, "first_seen_at": now}
        conn.execute(_insert_ignoring_copies(dialect, _BOXES), first)
    params = {
        "b_device_id": box.device_id,
        "b_rc": report.request_count,
        "b_ts": report.timestamp,
        "b_now": now,
        "b_reported": report.reported_count,
        "b_format": report.data_format_id,
    }
    readings = _unique(report.readings)
    if dialect == "postgresql":
        rows = [{"at": r.at, "kind": r.kind, "data": r.values} for r in readings]
        return bool(conn.execute(_REPORT, params | {"b_readings": rows}).scalar_one())
    result: Any = conn.execute(_ACCEPT, params)
    if result.rowcount != 1:
        return False
    rows = [
        {
            "device_id": box.device_id,
            "at": datetime.fromtimestamp(r.at, UTC),
            "kind": r.kind,
            "data": r.values,
            "received_at": now,
        }
        for r in readings
    ]
    if rows:
        conn.execute(_insert_ignoring_copies(dialect, _DATA), rows)
    conn.execute(_RECORD_COUNT, params)
    return True


def _unique(readings: Iterable[Reading]) -> list[Reading]:
    """The first reading of each time and kind (a request may repeat a row)."""
    first: dict[tuple[int, str], Reading] = {}
    for reading in readings:
        first.setdefault((reading.at, reading.kind), reading)
    return list(first.values())


def codes_above(*, session: Connectable, device_id: int, count: int) -> list[int]:
    """The codes issued for a device above a count, oldest first, as numbers."""
    codes = _core(session).execute(_CODES, {"b_device_id": device_id, "b_count": count}).scalars()
    return [int(code) for code in codes]


def active_until(*, session: Connectable, device_id: int) -> int:
    """Until when (Unix seconds) the box's current account has credit; 0 for none."""
    row = _core(session).execute(_ACCOUNT, {"b_device_id": device_id}).first()
    if row is None:
        return 0
    status, credit_until = row
    if status == AccountStatus.PAID_OFF:
        return FOREVER
    if status in (AccountStatus.REPOSSESSED, AccountStatus.CLOSED) or credit_until is None:
        return 0
    return int(credit_until.timestamp())


# --- data formats ---------------------------------------------------------------------------

_FORMATS = MetricsDataFormat.__table__  # type: ignore[attr-defined]


def register_format(*, session: Connectable, fmt: DataFormat, actor: str, now: datetime) -> int:
    """Store a data format once and return its id (the same format again: the same id)."""
    conn = _core(session)
    digest = fmt.digest()
    row = {"digest": digest, "body": fmt.canonical(), "created_by": actor[:80], "created_at": now}
    conn.execute(_insert_ignoring_copies(conn.dialect.name, _FORMATS), row)
    ident: int = conn.execute(
        sa.select(_FORMATS.c.id).where(_FORMATS.c.digest == digest)
    ).scalar_one()
    return ident


def get_format(*, session: Connectable, format_id: int) -> DataFormat:
    """A registered data format; InvalidInput when there is none with this id."""
    body = (
        _core(session)
        .execute(sa.select(_FORMATS.c.body).where(_FORMATS.c.id == format_id))
        .scalar_one_or_none()
    )
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
