"""The Metrics server's work, without Flask: answer a box, register a format, read data back.

A device-data request is verified before anything is written; then its replay guard, its
readings and the count known on the box are written together (or not at all), and the box
is answered with the codes it has not applied yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from paygo import audit
from paygo.backplane import Backplane
from paygo.crypto import KeyBox
from paygo.db import Database
from paygo.errors import InvalidInput, NotFound, Unavailable
from paygo.metrics import formats, protocol, store
from paygo.metrics.formats import DataFormat
from paygo.metrics.protocol import DeviceRequest, Refused, Replayed

log = logging.getLogger(__name__)

#: How far ahead of the server's clock a box's timestamp may be. Further would lock the box
#: out until its clock caught up: every later request would look like a replay.
CLOCK_AHEAD = timedelta(days=1)
#: One audit line per refusal kind and box (or address) in this window.
AUDIT_WINDOW_SECONDS = 600


class FormatCache:
    """Registered data formats by id, kept in memory: a registered format never changes."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._formats: dict[int, DataFormat] = {}

    def get(self, conn: Connection, format_id: int) -> DataFormat:
        """The format with this id (read from the database the first time)."""
        fmt = self._formats.get(format_id)
        if fmt is None:
            fmt = store.get_format(session=conn, format_id=format_id)
            if len(self._formats) >= self.size:
                self._formats.clear()
            self._formats[format_id] = fmt
        return fmt


def receive_device_data(
    *, db: Database, keys: KeyBox, body: bytes, now: datetime, formats: FormatCache | None = None
) -> dict[str, Any]:
    """Verify, store and answer one device-data request; the answer in condensed names."""
    request = protocol.parse_request(body)
    _check_clock(request, now)
    with _unit_of_work(db) as conn:
        box = store.find_box(session=conn, serial=request.serial)
        if box is None:
            raise _tagged(Refused("unknown serial"), request.serial)
        key = bytes.fromhex(keys.open(box.sealed_key))
        try:
            protocol.verify(request, key)
            answer = _record(conn, box, request, now, formats or FormatCache())
        except (Refused, Replayed) as exc:
            raise _tagged(exc, request.serial) from None
    return protocol.signed_answer(request, answer, key)


@contextmanager
def _unit_of_work(db: Database) -> Iterator[Connection]:
    """A connection for one request: one write transaction on SQLite, autocommit on PostgreSQL.

    On PostgreSQL every write of a request is one statement (`store.record_report`), atomic
    on its own: autocommit spares the BEGIN and COMMIT round trips. SQLite has no such
    statement, so its writes share a transaction that takes the write lock at BEGIN. The
    queries run on the Core connection: the ORM session would double their CPU cost.
    """
    if db.dialect != "postgresql":
        with db.transaction() as session:
            yield session.connection()
        return
    with db.engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


def _tagged(exc: Refused | Replayed, serial: str) -> Refused | Replayed:
    exc.serial = serial
    return exc


def _check_clock(request: DeviceRequest, now: datetime) -> None:
    latest = int((now + CLOCK_AHEAD).timestamp())
    for name, value in (("timestamp", request.timestamp), ("collected", request.collected_at)):
        if value is not None and value > latest:
            raise InvalidInput(f"the {name} is more than a day ahead of the server's clock")


def _record(
    conn: Connection, box: store.Box, request: DeviceRequest, now: datetime, cache: FormatCache
) -> dict[str, Any]:
    fmt, format_id = _data_format(conn, request, now, cache)
    data, readings = formats.expand(request, fmt, received_at=int(now.timestamp()))
    reported = formats.token_count(data)
    report = store.BoxReport(
        timestamp=request.timestamp,
        request_count=request.request_count,
        reported_count=reported,
        data_format_id=format_id,
        readings=readings,
    )
    if not store.record_report(session=conn, box=box, report=report, now=now):
        raise Replayed(_guards(request))
    return _answer(conn, box, data, reported, now)


def _data_format(
    conn: Connection, request: DeviceRequest, now: datetime, cache: FormatCache
) -> tuple[DataFormat | None, int | None]:
    """The request's data format: registered (by id) or sent along (registered now)."""
    if request.data_format_id is not None:
        return cache.get(conn, request.data_format_id), request.data_format_id
    if request.raw.get("data_format") is None:
        return None, None
    fmt = formats.parse_data_format(request.raw["data_format"])
    actor = f"device:{request.serial}"
    return fmt, store.register_format(session=conn, fmt=fmt, actor=actor, now=now)


def _guards(request: DeviceRequest) -> str:
    given = [("request_count", request.request_count), ("timestamp", request.timestamp)]
    return " and ".join(f"{name} {value}" for name, value in given if value is not None)


def _answer(
    conn: Connection, box: store.Box, data: dict[str, Any], reported: int | None, now: datetime
) -> dict[str, Any]:
    """What the box asked for: its unapplied codes, its active time, and any new settings."""
    answer: dict[str, Any] = {}
    if reported is not None:
        behind = box.token_count > reported  # else no code can be above it: no query
        answer["token_list"] = (
            store.codes_above(session=conn, device_id=box.device_id, count=reported)
            if behind
            else []
        )
    if data.get("active_until_timestamp_requested") in (True, 1):
        answer["active_until_timestamp"] = store.active_until(session=conn, device_id=box.device_id)
    elif data.get("active_seconds_left_requested") in (True, 1):
        until = store.active_until(session=conn, device_id=box.device_id)
        answer["active_seconds_left"] = max(0, until - int(now.timestamp()))
    if box.base_url:
        answer["settings"] = {"base_url": box.base_url}
    return answer


# --- refusals -------------------------------------------------------------------------------


class RefusalGate:
    """Lets one audit line per key through per window, kept on the backplane (Redis, else the
    database), so every web worker shares the window.

    A box with a wrong key, or someone replaying its requests, must not fill the audit log.
    """

    def __init__(self, backplane: Backplane, window_seconds: int = AUDIT_WINDOW_SECONDS) -> None:
        self.backplane, self.window = backplane, timedelta(seconds=window_seconds)

    def allow(self, key: str, *, now: datetime) -> bool:
        """Whether a line for `key` may be written now."""
        try:
            return self.backplane.put_if_absent(
                f"metrics:refused:{key}", "1", ttl=self.window, now=now
            )
        except Unavailable:
            log.warning("refusal not audited: the backplane does not answer")
            return False


@dataclass
class MetricsServer:
    """What the Metrics endpoints keep between requests: the data formats read, and the
    gate that keeps refusals from filling the audit log."""

    formats: FormatCache
    refusals: RefusalGate


def audit_refusal(
    *,
    db: Database,
    gate: RefusalGate,
    error: Refused | Replayed,
    remote_addr: str | None,
    now: datetime,
) -> bool:
    """Write an audit line for a refused request, at most one a window; True if written."""
    serial = error.serial
    kind = error.reason if isinstance(error, Refused) else "replayed"
    who = remote_addr if kind == "unknown serial" or serial is None else serial
    if not gate.allow(f"{kind}:{who}", now=now):
        return False
    try:
        with db.transaction() as session:
            audit.record(
                session=session,
                actor=f"device:{serial}"[:80],
                action="metrics.refused",
                target_type="device",
                target_id=(serial or "")[:40] or None,
                reason=error.reason if isinstance(error, Refused) else error.message,
                remote_addr=remote_addr,
            )
    except SQLAlchemyError:
        log.exception("audit line for a refused Metrics request not written")
        return False
    return True


# --- operators ------------------------------------------------------------------------------


def register_data_format(*, db: Database, body: bytes, actor: str, now: datetime) -> int:
    """Check and register a data format sent by an operator; its id (the same for a copy)."""
    fmt = formats.parse_data_format(protocol.load_json(body))
    with db.transaction() as session:
        return store.register_format(session=session, fmt=fmt, actor=actor, now=now)


def device_data(*, session: Session, serial: str, start: datetime, end: datetime) -> dict[str, Any]:
    """A box's stored data in a range, as a Device Request Object in the simple form."""
    box = store.find_box(session=session, serial=protocol.check_serial(serial))
    if box is None:
        raise NotFound(f"no device with serial {serial!r}", serial=serial)
    stored = store.read_data(session=session, device_id=box.device_id, start=start, end=end)
    out: dict[str, Any] = {"serial_number": box.serial, "data": {}, "historical_data": []}
    if stored.current is not None:
        out["data"] = stored.current.data
        out["data_collection_timestamp"] = _unix(stored.current.at)
    out["historical_data"] = [{"timestamp": _unix(r.at), **r.data} for r in stored.history]
    fmt = store.box_format(session=session, device_id=box.device_id)
    if fmt is not None:
        out["data_format"] = fmt.to_json()
    return out


def _unix(at: datetime) -> int:
    return int(at.astimezone(UTC).timestamp())


#: The longest range one read covers, and the range read when none is given.
MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=1)


def parse_range(start: str | None, end: str | None, *, now: datetime) -> tuple[datetime, datetime]:
    """A time range from ISO 8601 texts (UTC when no offset is given); the last day by default."""
    last = parse_time(end, "to") if end else now
    first = parse_time(start, "from") if start else last - DEFAULT_RANGE
    if first > last:
        raise InvalidInput("the range starts after it ends")
    if last - first > MAX_RANGE:
        raise InvalidInput(f"a range covers at most {MAX_RANGE.days} days")
    return first, last


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 date or time; without an offset it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what}: not an ISO 8601 date and time ({text[:40]!r})") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
