"""Reading providers' web hooks: bounded fields, ids, phone numbers, texts, JSON bodies.

Every refusal is an InvalidInput naming the field, so a bad request gets a clear 400 and
never reaches the database (PostgreSQL refuses NUL characters and lone surrogates).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from paygo.errors import InvalidInput
from paygo.phones import normalise

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\ud800-\udfff]")
_TOKEN = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")


def field(
    data: Mapping[str, Any], name: str, *, required: bool = False, limit: int = 100
) -> str | None:
    """A stripped one-line value of at most `limit` characters; None when absent or empty."""
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return None
    if len(value) > limit:
        raise InvalidInput(
            f"{name} is too long ({len(value)} characters, {limit} at most)", field=name
        )
    if _CONTROL.search(value) or not value.isprintable():
        raise InvalidInput(f"{name} has characters that cannot be stored", field=name)
    return value


def required(data: Mapping[str, Any], name: str, limit: int = 100) -> str:
    """A field that must be there (see `field`)."""
    value = field(data, name, required=True, limit=limit)
    assert value is not None
    return value


def token(data: Mapping[str, Any], name: str) -> str:
    """A provider's message id: letters, digits and `_.:-` only."""
    value = required(data, name)
    if not _TOKEN.fullmatch(value):
        raise InvalidInput(f"{name} has characters a message id never has", field=name)
    return value


def phone(data: Mapping[str, Any], name: str, default_country: str) -> str:
    """A sender's number in E.164 (international numbers may come without the plus)."""
    return normalise(required(data, name, 40), default_country)


def text(data: Mapping[str, Any], name: str) -> str:
    """A message text as the customer typed it, less what cannot be stored."""
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    # A lone surrogate or NUL is no command: dropping it keeps the rest readable.
    return _NOT_TEXT.sub("", value)


def json_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body; numbers stay exact and huge ones are refused."""
    try:
        data = json.loads(body.decode("utf-8"), parse_float=str)
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise InvalidInput("the body is not a JSON object") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body is not a JSON object")
    return data


def objects(data: Mapping[str, Any], name: str, *, limit: int = 1000) -> list[dict[str, Any]]:
    """A non-empty list of JSON objects (a batch of messages or reports)."""
    items = data.get(name)
    if not isinstance(items, list) or not items:
        raise InvalidInput(f"{name} must be a non-empty list", field=name)
    if len(items) > limit:
        raise InvalidInput(f"{name} has more than {limit} entries", field=name)
    if not all(isinstance(item, dict) for item in items):
        raise InvalidInput(f"every entry of {name} must be an object", field=name)
    return items
