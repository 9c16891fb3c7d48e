"""The OpenPAYGO Metrics wire format: safe JSON, key names and SipHash-2-4 signatures.

Follows the specification (openpaygo/metrics `Specifications.md`, v1.0.0-rc1). Signatures
are byte for byte those of the reference library (`openpaygo` 0.6.x, `metrics_shared.py`),
which is what boxes build their requests with: the hash of the UTF-8 text, in lower-case hex
without leading zeros, and JSON re-serialised compactly (`separators=(",", ":")`, ASCII
escapes) from the values as parsed. No database and no Flask here.
"""

from __future__ import annotations

import hmac
import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import siphashc

from paygo.errors import GatewayError, InvalidInput

#: Long and short names of the request and answer keys (the specification's tables).
CONDENSED = {
    "serial_number": "sn",
    "timestamp": "ts",
    "auth": "a",
    "request_count": "rc",
    "data_collection_timestamp": "dct",
    "data_format_id": "df",
    "data_format": "dfo",
    "data": "d",
    "historical_data": "hd",
    "accessories": "acc",
    "token_list": "tkl",
    "active_until_timestamp": "auts",
    "active_seconds_left": "asl",
    "settings": "st",
    "extra_data": "ed",
}
#: The reference library spells the collection timestamp `dtc`; the specification, `dct`.
_SIMPLE = {short: long for long, short in CONDENSED.items()} | {"dtc": "data_collection_timestamp"}
#: Standard variables inside `data`, with their short names.
DATA_CONDENSED = {
    "token_count": "tc",
    "active_until_timestamp_requested": "autsr",
    "active_seconds_left_requested": "aslr",
}
DATA_SIMPLE = {short: long for long, short in DATA_CONDENSED.items()}

MAX_DEPTH = 8
MAX_INT = 2**63 - 1
#: Unix seconds a timestamp may take (the database's 32-bit-safe range, and > 0).
MAX_TIMESTAMP = 2**32 - 1
MAX_SERIAL = 40


class AuthMethod(StrEnum):
    SIMPLE = "sa"
    TIMESTAMP = "ta"
    COUNTER = "ca"
    DATA = "da"
    RECURSIVE_DATA = "ra"


class Refused(GatewayError):
    """A device request that failed authentication; the reason goes to the audit log only."""

    status_code = 403
    code = "forbidden"

    def __init__(self, reason: str) -> None:
        # One message for an unknown serial and a wrong signature: serials cannot be probed.
        super().__init__("authentication failed")
        self.reason = reason
        self.serial: str | None = None


class Replayed(GatewayError):
    """A device request not newer than the last one accepted from its box."""

    status_code = 409
    code = "replayed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason}: not newer than the last request accepted; nothing stored")
        self.reason = reason
        self.serial: str | None = None


@dataclass(frozen=True)
class DeviceRequest:
    """A device request: its top-level keys in long names, its values exactly as sent."""

    raw: dict[str, Any] = field(repr=False)
    serial: str
    timestamp: int | None
    request_count: int | None
    collected_at: int | None
    data_format_id: int | None


def load_json(body: bytes) -> Any:
    """Parse a body as JSON, refusing what no box sends and the database cannot store."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8 text") from None
    try:
        value = json.loads(
            text, parse_constant=_no_constant, parse_int=_whole_number, parse_float=_decimal
        )
    except _TooLarge as exc:
        raise InvalidInput(str(exc)) from None
    except RecursionError:
        raise InvalidInput("the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of thousands of digits
        raise InvalidInput(f"the body is not JSON: {str(exc)[:80]}") from None
    if "\\u" in text:  # NUL and lone surrogates can only come in as \u escapes
        check_value(value)
    else:
        _check_depth(value)
    return value


class _TooLarge(Exception):
    pass


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _whole_number(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_INT:
        raise _TooLarge("a number is too large (64-bit integers at most)")
    return value


def _decimal(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _TooLarge("a number is too large to be stored")
    return value


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"values are nested more than {MAX_DEPTH} levels deep")
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        if isinstance(item, dict | list):
            _check_depth(item, depth + 1)


def check_value(value: Any, depth: int = 0) -> None:
    """Refuse NUL, lone surrogates, non-finite or huge numbers and deep nesting."""
    if depth > MAX_DEPTH:
        raise InvalidInput(f"values are nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise InvalidInput("a number is too large (64-bit integers at most)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput("a number is too large to be stored")
    elif isinstance(value, list):
        for item in value:
            check_value(item, depth + 1)
    else:
        for key, item in value.items():
            check_text(key)
            check_value(item, depth + 1)


def check_text(text: str) -> None:
    """Refuse a string the database cannot hold (NUL, lone surrogates)."""
    if "\x00" in text:
        raise InvalidInput("text may not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("text may not contain lone surrogates") from None


def simple_keys(value: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """Rename short keys to long ones; a key given under both names is refused."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = names.get(key, key)
        if name in out:
            raise InvalidInput(f"{name} is given twice (under its short and long name)")
        out[name] = item
    return out


def parse_request(body: bytes) -> DeviceRequest:
    """Read a device request (simple or condensed) and check its standard fields."""
    value = load_json(body)
    if not isinstance(value, dict):
        raise InvalidInput("a device request is a JSON object")
    raw = simple_keys(value, _SIMPLE)
    request = DeviceRequest(
        raw=raw,
        serial=check_serial(raw.get("serial_number")),
        timestamp=_whole(raw, "timestamp", 1, MAX_TIMESTAMP),
        request_count=_whole(raw, "request_count", 1, MAX_INT),
        collected_at=_whole(raw, "data_collection_timestamp", 1, MAX_TIMESTAMP),
        data_format_id=_whole(raw, "data_format_id", 1, 2**31 - 1),
    )
    _check_shape(request)
    return request


def check_serial(serial: Any) -> str:
    """A serial number as the database holds them: text of 1 to 40 characters."""
    if not isinstance(serial, str) or not 0 < len(serial) <= MAX_SERIAL:
        raise InvalidInput(f"serial_number must be text of 1 to {MAX_SERIAL} characters")
    check_text(serial)
    return serial


def _whole(raw: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
    return value


def _check_shape(request: DeviceRequest) -> None:
    raw = request.raw
    if request.timestamp is None and request.request_count is None:
        # Without either, a replay cannot be told from a new request.
        raise InvalidInput("a request needs a timestamp or a request_count")
    if "data_format" in raw and "data_format_id" in raw:
        raise InvalidInput("data_format and data_format_id cannot be given together")
    if raw.get("data_format") is not None and not isinstance(raw["data_format"], dict):
        raise InvalidInput("data_format must be an object")
    if not isinstance(raw.get("data"), dict | list | None):
        raise InvalidInput("data must be an object or an array")
    # The reference library sends an empty object when a box has no history: accepted as none.
    if not isinstance(raw.get("historical_data"), list | None) and raw["historical_data"] != {}:
        raise InvalidInput("historical_data must be an array")
    if not raw.get("data") and not raw.get("historical_data"):
        raise InvalidInput("a request needs data or historical_data")
    if not isinstance(raw.get("auth"), str | None):
        raise InvalidInput("auth must be text")


# --- signatures ------------------------------------------------------------------------------


def compact(value: Any) -> str:
    """JSON as the standard signs it: no spaces after separators."""
    return json.dumps(value, separators=(",", ":"))


def sip_hex(text: str, key: bytes) -> str:
    """SipHash-2-4 of the UTF-8 text under the device key, as lower-case hex."""
    return format(siphashc.siphash(key, text.encode("utf-8")), "x")


def request_signature(raw: dict[str, Any], method: AuthMethod, key: bytes) -> str:
    """The `auth` value a box with this key sends for this request with this method."""
    serial, ts, rc = raw["serial_number"], raw.get("timestamp"), raw.get("request_count")
    if method is AuthMethod.SIMPLE:
        return method + sip_hex(serial, key)
    if method is AuthMethod.TIMESTAMP:
        if not ts:
            raise InvalidInput("timestamp auth (ta) needs a timestamp")
        return method + sip_hex(serial + str(ts), key)
    if method is AuthMethod.COUNTER:
        if not rc:
            raise InvalidInput("counter auth (ca) needs a request_count")
        return method + sip_hex(serial + str(rc), key)
    if method is AuthMethod.DATA:
        payload = serial + (str(ts) if ts else "") + (str(rc) if rc else "")
        payload += compact(raw["data"]) if raw.get("data") else ""
        payload += compact(raw["historical_data"]) if raw.get("historical_data") else ""
        return method + sip_hex(payload, key)
    return method + _recursive(raw, key)


def _recursive(raw: dict[str, Any], key: bytes) -> str:
    """Recursive data auth: each piece hashed onto the previous hash, row by row."""
    digest = sip_hex(raw["serial_number"], key)
    for part in (raw.get("timestamp"), raw.get("request_count")):
        if part:
            digest = sip_hex(digest + str(part), key)
    digest = sip_hex(digest + compact(raw.get("data", [])), key)
    for row in raw.get("historical_data") or []:
        digest = sip_hex(digest + compact(row), key)
    return digest


def verify(request: DeviceRequest, key: bytes) -> AuthMethod:
    """Check the request's `auth` against the device key; raise Refused if it does not match."""
    auth = request.raw.get("auth")
    if not auth:
        raise Refused("no auth")
    try:
        method = AuthMethod(auth[:2])
    except ValueError:
        raise Refused("unknown auth method") from None
    expected = request_signature(request.raw, method, key)
    if not hmac.compare_digest(expected.encode(), auth.encode()):
        raise Refused("wrong signature")
    return method


def response_signature(
    *, serial: str, timestamp: int | None, request_count: int | None, answer: dict[str, Any]
) -> str:
    """The text a Data Auth answer signature covers, in the standard's order."""
    payload = serial + (str(timestamp) if timestamp else "")
    payload += str(request_count) if request_count else ""
    for name in ("active_until_timestamp", "active_seconds_left"):
        payload += str(answer[name]) if answer.get(name) else ""
    for name in ("token_list", "settings", "extra_data"):
        payload += compact(answer[name]) if answer.get(name) else ""
    return payload


def signed_answer(request: DeviceRequest, answer: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The answer in condensed names, with the box's serial and a Data Auth signature."""
    payload = response_signature(
        serial=request.serial,
        timestamp=request.timestamp,
        request_count=request.request_count,
        answer=answer,
    )
    condensed = {CONDENSED[name]: value for name, value in answer.items()}
    return {"sn": request.serial, **condensed, "a": AuthMethod.DATA + sip_hex(payload, key)}
