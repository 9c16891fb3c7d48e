"""Keyset (cursor) pagination, shared by every list of the CLI and the operator API.

A page is read with `WHERE key < last key ORDER BY key DESC LIMIT n + 1`: an indexed range
scan whatever page it is (OFFSET walks every skipped row), and a row written meanwhile
never shifts the next page. The cursor is opaque to its reader: the last row's key,
encoded, and tagged with the list it came from so it cannot be used on another list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from paygo.errors import InvalidInput

T = TypeVar("T")
Key = tuple[int | str, ...]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, and the cursor of the next page (None: the last)."""

    items: list[T]
    next: str | None


def check_limit(limit: int) -> int:
    """Refuse a page size outside 1..MAX_LIMIT."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", limit=limit)
    return limit


def encode_cursor(listing: str, key: Key) -> str:
    """The opaque cursor that continues `listing` after the row with `key`."""
    raw = json.dumps([listing, list(key)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str, size: int) -> Key:
    """The key a cursor of `listing` holds; InvalidInput for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor.strip() + "=" * (-len(cursor.strip()) % 4))
        name, key = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("not a cursor: use the `next` value of the previous page") from None
    valid = isinstance(key, list) and len(key) == size
    if name != listing or not valid or not all(isinstance(v, int | str) for v in key):
        raise InvalidInput(f"not a cursor of the {listing} list") from None
    return tuple(key)


def page(
    *,
    session: Session,
    query: Any,
    listing: str,
    order: Sequence[Any],
    key: Callable[[T], Key],
    limit: int,
    cursor: str | None,
    descending: bool = True,
) -> Page[T]:
    """Read one page of `query`, ordered by the unique columns `order`, after `cursor`.

    `key` gives a row's values of `order` (the cursor of the page that follows it).
    """
    check_limit(limit)
    if cursor:
        after = decode_cursor(listing, cursor, len(order))
        left, right = (order[0], after[0]) if len(order) == 1 else (sa.tuple_(*order), after)
        query = query.where(left < right if descending else left > right)
    directed = [c.desc() if descending else c.asc() for c in order]
    rows: list[T] = list(session.exec(query.order_by(*directed).limit(limit + 1)))
    if len(rows) <= limit:
        return Page(items=rows, next=None)
    return Page(items=rows[:limit], next=encode_cursor(listing, key(rows[limit - 1])))
