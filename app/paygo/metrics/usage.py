"""A box's usage over time: its readings aggregated by hour or day, in SQL.

Every numeric variable the box reported in the range is aggregated the way its data format
says (`aggregation_method`: average by default, sum, min or max; `scale_factor` applied),
in buckets of whole UTC hours or days. Text variables, those aggregated as `latest`, and
the protocol's own (the token count, the time requests) are left out. The operator API's
`GET /api/v1/devices/{serial}/usage?from=&to=&every=1h|1d` is a thin view over `usage()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from paygo.errors import InvalidInput, NotFound
from paygo.metrics import store
from paygo.metrics.formats import DataFormat
from paygo.metrics.protocol import check_serial
from paygo.models import DeviceData

EVERY = {"1h": 3600, "1d": 86400}
MAX_RANGE = timedelta(days=366)
MAX_VARIABLES = 50
#: Variables of the protocol itself, not of the box's usage.
PROTOCOL_VARIABLES = (
    "token_count",
    "active_until_timestamp_requested",
    "active_seconds_left_requested",
)
_AGGREGATE: dict[str, Callable[[Any], Any]] = {
    "average": sa.func.avg,
    "sum": sa.func.sum,
    "min": sa.func.min,
    "max": sa.func.max,
}


@dataclass(frozen=True)
class Bucket:
    """One hour or day: when it starts, how many readings fell in it, each variable's value."""

    start: datetime
    readings: int
    values: dict[str, float | None]


@dataclass(frozen=True)
class Usage:
    """A box's aggregated readings between two times."""

    serial: str
    every: str
    start: datetime
    end: datetime
    aggregations: dict[str, str] = field(default_factory=dict)
    buckets: list[Bucket] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for an API answer (times in ISO 8601)."""
        return {
            "serial": self.serial,
            "every": self.every,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "aggregations": self.aggregations,
            "buckets": [
                {"start": b.start.isoformat(), "readings": b.readings, "values": b.values}
                for b in self.buckets
            ],
        }


def usage(*, session: Session, serial: str, start: datetime, end: datetime, every: str) -> Usage:
    """Aggregate a box's readings from `start` to `end` (inclusive) by `every` (1h or 1d)."""
    step = EVERY.get(every)
    if step is None:
        raise InvalidInput("every must be 1h or 1d", every=every[:10])
    if end < start or end - start > MAX_RANGE:
        raise InvalidInput(f"the range must run forwards, over {MAX_RANGE.days} days at most")
    box = store.find_box(session=session, serial=check_serial(serial))
    if box is None:
        raise NotFound(f"no device with serial {serial!r}", serial=serial)
    fmt = store.box_format(session=session, device_id=box.device_id) or DataFormat()
    where = _in_range(box.device_id, start, end)
    names = [n for n in _variables(session, where) if _aggregated(n, fmt)][:MAX_VARIABLES]
    aggregations = {name: fmt.aggregation(name) for name in names}
    buckets = _buckets(session, where, step, aggregations, fmt)
    return Usage(box.serial, every, start, end, aggregations, buckets)


def _in_range(device_id: int, start: datetime, end: datetime) -> list[Any]:
    return [
        col(DeviceData.device_id) == device_id,
        col(DeviceData.at) >= start,
        col(DeviceData.at) <= end,
    ]


def _aggregated(name: str, fmt: DataFormat) -> bool:
    # Quotes and backslashes cannot be written into a SQLite JSON path.
    safe = '"' not in name and "\\" not in name
    numeric = fmt.numeric(name) and fmt.aggregation(name) in _AGGREGATE
    return safe and numeric and name not in PROTOCOL_VARIABLES


def _variables(session: Session, where: list[Any]) -> list[str]:
    """Every variable name in the range's readings, in order."""
    data = col(DeviceData.data)
    if session.get_bind().dialect.name == "postgresql":
        query = sa.select(sa.func.jsonb_object_keys(data)).where(*where)
    else:
        keys = sa.func.json_each(data).table_valued("key")
        query = sa.select(keys.c.key).select_from(DeviceData).join(keys, sa.true()).where(*where)
    return sorted(str(key) for key in session.execute(query.distinct()).scalars())


def _number(session: Session, name: str) -> Any:
    """A variable's value where it is a JSON number; NULL for text, booleans and absence."""
    data = col(DeviceData.data)
    if session.get_bind().dialect.name == "postgresql":
        is_number = sa.func.jsonb_typeof(data[name]) == "number"
    else:
        is_number = sa.func.json_type(data, f'$."{name}"').in_(("integer", "real"))
    return sa.case((is_number, data[name].as_float()))


def _bucket(session: Session, step: int) -> Any:
    """The bucket number of a reading: whole steps of Unix time (UTC hours or days)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.floor(sa.extract("epoch", col(DeviceData.at)) / step)
    return sa.cast(sa.func.strftime("%s", col(DeviceData.at)), sa.Integer) // step


def _buckets(
    session: Session, where: list[Any], step: int, aggregations: dict[str, str], fmt: DataFormat
) -> list[Bucket]:
    bucket = _bucket(session, step).label("bucket")
    columns = [
        _AGGREGATE[method](_number(session, name) * fmt.scale(name))
        for name, method in aggregations.items()
    ]
    query = (
        sa.select(bucket, sa.func.count(), *columns).where(*where).group_by(bucket).order_by(bucket)
    )
    return [
        Bucket(
            start=datetime.fromtimestamp(int(row[0]) * step, UTC),
            readings=int(row[1]),
            values={
                name: None if value is None else float(value)
                for name, value in zip(aggregations, row[2:], strict=True)
            },
        )
        for row in session.execute(query)
    ]
