"""Data formats, and turning a request's data into readings with their own timestamps.

A data format names the variables of a condensed request in order (`data_order`,
`historical_data_order`), may give the seconds between historical rows
(`historical_data_interval`, negative when the newest row comes first) and describes its
variables. A reading is one stored row: the current data, or one historical row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paygo.errors import InvalidInput
from paygo.metrics.protocol import (
    DATA_SIMPLE,
    MAX_TIMESTAMP,
    DeviceRequest,
    check_value,
    simple_keys,
)

VARIABLE_TYPES = ("text", "integer", "float", "bool", "gps")
AGGREGATIONS = ("average", "latest", "sum", "min", "max")
#: Variables with a meaning of their own in a historical row: its time.
TIME_VARIABLES = ("timestamp", "relative_time")
MAX_VARIABLES = 100
MAX_NAME = 64
MAX_ROWS = 10_000
#: Longest interval or relative time between two rows: a year.
MAX_STEP = 366 * 24 * 3600
CURRENT, HISTORICAL = "d", "h"


@dataclass(frozen=True)
class DataFormat:
    """A checked data format."""

    data_order: tuple[str, ...] = ()
    historical_data_order: tuple[str, ...] = ()
    historical_data_interval: int | None = None
    variables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The format as the standard writes it (keys it does not use left out)."""
        out: dict[str, Any] = {}
        if self.data_order:
            out["data_order"] = list(self.data_order)
        if self.historical_data_order:
            out["historical_data_order"] = list(self.historical_data_order)
        if self.historical_data_interval is not None:
            out["historical_data_interval"] = self.historical_data_interval
        if self.variables:
            out["variables"] = {k: dict(v) for k, v in self.variables.items()}
        return out

    def canonical(self) -> str:
        """One text per format, whatever order its keys came in."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def aggregation(self, name: str) -> str:
        """How readings of a variable combine over time (the standard's default for numbers)."""
        return str(self.variables.get(name, {}).get("aggregation_method", "average"))

    def scale(self, name: str) -> float:
        return float(self.variables.get(name, {}).get("scale_factor", 1))

    def numeric(self, name: str) -> bool:
        """Whether a variable can be averaged: described as a number, or not described."""
        if name not in self.variables:
            return True  # its values decide: only numbers are aggregated
        return self.variables[name].get("type", "text") in ("integer", "float")


@dataclass(frozen=True)
class Reading:
    """One row to store: when (Unix seconds), which kind, and the values by long name."""

    at: int
    kind: str
    values: dict[str, Any]


def parse_data_format(value: Any) -> DataFormat:
    """Check a data format object; keys the standard does not define are ignored."""
    if not isinstance(value, dict):
        raise InvalidInput("a data format is a JSON object")
    check_value(value)
    interval = value.get("historical_data_interval")
    if interval is not None and (
        isinstance(interval, bool)
        or not isinstance(interval, int)
        or not 0 < abs(interval) <= MAX_STEP
    ):
        raise InvalidInput(f"historical_data_interval must be whole seconds, 1 to {MAX_STEP}")
    fmt = DataFormat(
        data_order=_order(value.get("data_order"), "data_order"),
        historical_data_order=_order(value.get("historical_data_order"), "historical_data_order"),
        historical_data_interval=interval,
        variables=_variables(value.get("variables")),
    )
    if not fmt.to_json():
        raise InvalidInput("the data format defines nothing")
    return fmt


def _order(value: Any, what: str) -> tuple[str, ...]:
    """An order as a list of names; the specification's table also shows {"1": name, ...}."""
    if value is None:
        return ()
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: int(k) if k.isdigit() else -1)
        first = 1 if keys and keys[0] == "1" else 0
        if keys != [str(i) for i in range(first, first + len(keys))]:
            raise InvalidInput(f"{what} as an object needs keys 0, 1, 2... (or 1, 2, 3...)")
        value = [value[k] for k in keys]
    if not isinstance(value, list) or len(value) > MAX_VARIABLES:
        raise InvalidInput(f"{what} must be a list of at most {MAX_VARIABLES} variable names")
    for name in value:
        _check_name(name, what)
    if len(set(value)) != len(value):
        raise InvalidInput(f"{what} names a variable twice")
    return tuple(value)


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise InvalidInput(f"{what}: variable names are text of 1 to {MAX_NAME} characters")
    if name.isdigit():
        # The standard forbids them: they would clash with the index keys of a data object.
        raise InvalidInput(f"{what}: a variable name may not be a number ({name!r})")


def _variables(value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_VARIABLES:
        raise InvalidInput(f"variables must be an object of at most {MAX_VARIABLES} entries")
    out = {}
    for name, spec in value.items():
        _check_name(name, "variables")
        out[name] = _variable(name, spec)
    return out


def _variable(name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise InvalidInput(f"variable {name!r} must be an object")
    out: dict[str, Any] = {}
    for key, limit in (("name", 120), ("unit", 40), ("description", 500)):
        text = spec.get(key)
        if text is not None and (not isinstance(text, str) or len(text) > limit):
            raise InvalidInput(f"variable {name!r}: {key} must be text of {limit} characters")
        if text is not None:
            out[key] = text
    if "name" not in out:
        raise InvalidInput(f"variable {name!r} needs a name (the standard requires it)")
    for key, allowed in (("type", VARIABLE_TYPES), ("aggregation_method", AGGREGATIONS)):
        if key in spec and spec[key] not in allowed:
            raise InvalidInput(f"variable {name!r}: {key} must be one of {', '.join(allowed)}")
        if key in spec:
            out[key] = spec[key]
    scale = spec.get("scale_factor")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale:
            raise InvalidInput(f"variable {name!r}: scale_factor must be a non-zero number")
        out["scale_factor"] = scale
    return out


# --- expansion ------------------------------------------------------------------------------


def expand(
    request: DeviceRequest, fmt: DataFormat | None, *, received_at: int
) -> tuple[dict[str, Any], list[Reading]]:
    """The request's current data (long names) and every reading to store, each timed.

    The reference time is the collection timestamp, else the request's, else its arrival.
    """
    reference = request.collected_at or request.timestamp or received_at
    data = current_data(request.raw.get("data"), fmt)
    readings = [Reading(reference, CURRENT, data)] if data else []
    readings += history(request.raw.get("historical_data") or [], fmt, reference)
    return data, readings


def current_data(value: Any, fmt: DataFormat | None) -> dict[str, Any]:
    """The `data` of a request as an object of long names (absent values left out)."""
    if value is None:
        return {}
    order = fmt.data_order if fmt else ()
    values = _step(value, order, "data")
    return simple_keys(values, DATA_SIMPLE)


def _step(value: Any, order: tuple[str, ...], what: str) -> dict[str, Any]:
    """One data array or data object as {name: value}, index keys replaced by their names."""
    if isinstance(value, list):
        if not order:
            raise InvalidInput(f"{what} is an array but no data format gives its order")
        if len(value) > len(order):
            raise InvalidInput(f"{what} has more values than its data format names")
        pairs = list(zip(order, value, strict=False))
    elif isinstance(value, dict):
        if len(value) > MAX_VARIABLES:
            raise InvalidInput(f"{what} has more than {MAX_VARIABLES} variables")
        pairs = [(_index_name(key, order, what), item) for key, item in value.items()]
    else:
        raise InvalidInput(f"{what} must be an object or an array")
    out: dict[str, Any] = {}
    for name, item in pairs:
        if name in out:
            raise InvalidInput(f"{what} gives {name} twice")
        if item is not None:  # a gap in an array: the variable was not sent
            out[name] = item
    return out


def _index_name(key: str, order: tuple[str, ...], what: str) -> str:
    if not key.isdigit():
        return key
    if int(key) >= len(order):
        raise InvalidInput(f"{what}: index {key} is not in its data format's order")
    return order[int(key)]


def history(rows: list[Any], fmt: DataFormat | None, reference: int) -> list[Reading]:
    """Historical rows with their timestamps filled in as the standard describes.

    A row's `timestamp` is absolute, its `relative_time` counts from the previous row (the
    first: from the reference time); a row with neither comes `historical_data_interval`
    seconds after the previous one, and the first such row is at the reference time (as the
    reference library does).
    """
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS} historical rows a request; send the rest next")
    order = fmt.historical_data_order if fmt else ()
    interval = fmt.historical_data_interval if fmt else None
    readings: list[Reading] = []
    at = reference
    for number, row in enumerate(rows, start=1):
        values = _step(row, order, f"historical row {number}")
        at = _row_time(values, at, number, interval)
        if values:
            readings.append(Reading(at, HISTORICAL, values))
    return readings


def _row_time(values: dict[str, Any], previous: int, number: int, interval: int | None) -> int:
    relative, stamp = values.pop("relative_time", None), values.pop("timestamp", None)
    if relative is not None:
        at = previous + _seconds(relative, number, "relative_time", MAX_STEP)
    elif stamp is not None:
        at = _seconds(stamp, number, "timestamp", MAX_TIMESTAMP)
    elif number == 1:
        at = previous
    elif interval is None:
        raise InvalidInput(
            f"historical row {number} has no timestamp or relative_time and the data format "
            f"has no historical_data_interval"
        )
    else:
        at = previous + interval
    if not 0 < at <= MAX_TIMESTAMP:
        raise InvalidInput(f"historical row {number} falls outside the Unix time we store")
    return at


def _seconds(value: Any, number: int, what: str, limit: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > limit:
        raise InvalidInput(f"historical row {number}: {what} must be whole seconds")
    return value


def token_count(data: dict[str, Any]) -> int | None:
    """The token count a box reported in its data, if any."""
    count = data.get("token_count")
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 2**31:
        raise InvalidInput("token_count must be a whole number from 0")
    return count
