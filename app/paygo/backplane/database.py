"""The backplane without Redis: keys, counters and scored sets in a table; jobs run at once.

For an install with no REDIS_URL (`make run`, a small deployment): what the web processes
share lives in `backplane_entries`, one row per key, counter or set member, and a job runs
in the calling process as soon as it is enqueued (the caller has committed first; a
failure is logged and left to the sweeps, the database being the source of truth).
Expired rows are skipped when read and deleted by the hourly prune (paygo.schedule).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import Insert, case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from paygo.backplane.base import Backplane
from paygo.db import Database
from paygo.models import BackplaneEntry, UTCDateTime

log = logging.getLogger(__name__)
_TABLE = BackplaneEntry.__table__  # type: ignore[attr-defined]
#: The member of a plain key or counter; set members are never empty.
_PLAIN = ""
#: The columns' lengths: a longer key or member is stored by its start and its digest.
KEY_LENGTH, MEMBER_LENGTH = 200, 100


class DatabaseBackplane(Backplane):
    """Keys, counters and scored sets in the database; jobs run in the calling process."""

    service: ClassVar[str | None] = None
    inline: ClassVar[bool] = True
    expires_by_itself: ClassVar[bool] = False

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str, *, now: datetime) -> str | None:
        """The value of a live key, or None."""
        key = _fit(key, KEY_LENGTH)
        with self.db.autocommit.connect() as conn:
            value: str | None = conn.execute(
                select(_TABLE.c.value).where(*_live(key, _PLAIN, now))
            ).scalar()
        return value

    def put(self, key: str, value: str, *, ttl: timedelta, now: datetime) -> None:
        """Set a key for `ttl`, whatever it held."""
        key = _fit(key, KEY_LENGTH)
        row = {"key": key, "member": _PLAIN, "value": value, "expires_at": now + ttl}
        self._write(self._upsert(row, {"value": value, "expires_at": now + ttl}))

    def put_if_absent(self, key: str, value: str, *, ttl: timedelta, now: datetime) -> bool:
        """Set a key for `ttl` unless it is live; True when this call set it."""
        key = _fit(key, KEY_LENGTH)
        row = {"key": key, "member": _PLAIN, "value": value, "expires_at": now + ttl}
        statement = self._upsert(
            row, {"value": value, "expires_at": now + ttl}, where=_TABLE.c.expires_at <= now
        )
        return self._write(statement.returning(_TABLE.c.key)) is not None

    def delete(self, key: str) -> None:
        """Forget a key, a counter or a scored set."""
        key = _fit(key, KEY_LENGTH)
        with self.db.autocommit.begin() as conn:
            conn.execute(delete(_TABLE).where(_TABLE.c.key == key))

    def count(self, key: str, *, ttl: timedelta, now: datetime) -> int:
        """Add one to a counter and return it; a counter lives `ttl` from its first count."""
        key = _fit(key, KEY_LENGTH)
        expired, until = _TABLE.c.expires_at <= now, literal(now + ttl, UTCDateTime())
        statement = self._upsert(
            {"key": key, "member": _PLAIN, "score": 1, "expires_at": now + ttl},
            {
                "score": case((expired, 1), else_=_TABLE.c.score + 1),
                "expires_at": case((expired, until), else_=_TABLE.c.expires_at),
            },
        )
        return int(self._write(statement.returning(_TABLE.c.score)) or 0)

    def add_scored(
        self,
        key: str,
        member: str,
        score: float,
        *,
        drop_below: float,
        ttl: timedelta,
        now: datetime,
    ) -> None:
        """Add (or re-score) a member, forgetting those scored below `drop_below`."""
        key, member = _fit(key, KEY_LENGTH), _fit(member, MEMBER_LENGTH)
        if member == _PLAIN:
            raise ValueError("a scored set's member is never empty")
        row = {"key": key, "member": member, "score": score, "expires_at": now + ttl}
        with self.db.transaction() as session:
            conn = session.connection()
            conn.execute(self._upsert(row, {"score": score}))
            conn.execute(
                delete(_TABLE)
                .where(_TABLE.c.key == key, _TABLE.c.member != _PLAIN)
                .where(_TABLE.c.score < drop_below)
            )
            # The whole set lives on from now, as Redis's EXPIRE of the key does.
            conn.execute(update(_TABLE).where(_TABLE.c.key == key).values(expires_at=now + ttl))

    def scored(self, key: str, *, above: float, now: datetime) -> list[tuple[str, float]]:
        """The members scored above `above`, with their scores."""
        key = _fit(key, KEY_LENGTH)
        query = (
            select(_TABLE.c.member, _TABLE.c.score)
            .where(_TABLE.c.key == key, _TABLE.c.member != _PLAIN, _TABLE.c.expires_at > now)
            .where(_TABLE.c.score > above)
            .order_by(_TABLE.c.score)
        )
        with self.db.autocommit.connect() as conn:
            return [(str(member), float(score)) for member, score in conn.execute(query)]

    def keys(self, prefix: str, *, now: datetime) -> list[str]:
        """The live keys whose names start with `prefix`, sorted."""
        query = (
            select(_TABLE.c.key)
            .where(_TABLE.c.key.startswith(prefix, autoescape=True), _TABLE.c.expires_at > now)
            .distinct()
            .order_by(_TABLE.c.key)
        )
        with self.db.autocommit.connect() as conn:
            return [str(key) for key in conn.execute(query).scalars()]

    def enqueue(
        self,
        func: Callable[..., Any],
        *args: Any,
        job_id: str,
        retries: int = 0,
        delay: timedelta | None = None,
        fresh: bool = False,
    ) -> None:
        """Run `func(*args)` now, in this process; a failure is logged, not raised."""
        # The caller has committed its transaction: the sweeps retry whatever fails here.
        try:
            func(*args)
        except Exception:
            log.exception("inline job %s failed", job_id)

    def ping(self) -> None:
        """Nothing to check: the backplane is the database, which /healthz checks."""

    def close(self) -> None:
        """Nothing of its own to close: the Database is disposed with the app."""

    def prune(self, *, now: datetime) -> int:
        """Delete the expired keys, counters and set members."""
        with self.db.transaction() as session:
            done = session.connection().execute(delete(_TABLE).where(_TABLE.c.expires_at <= now))
        return int(done.rowcount)

    def _upsert(self, row: dict[str, Any], changes: dict[str, Any], *, where: Any = None) -> Insert:
        """INSERT the row, or on its (key, member) apply `changes` (when `where` holds)."""
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        statement: Insert = (
            dialect.insert(_TABLE)
            .values(row)
            .on_conflict_do_update(index_elements=["key", "member"], set_=changes, where=where)
        )
        return statement

    def _write(self, statement: Insert) -> Any:
        """Run one statement on its own (autocommit on PostgreSQL); the first value it
        returns, if any."""
        with self.db.autocommit.begin() as conn:
            result = conn.execute(statement)
            return result.scalar() if result.returns_rows else None


def _fit(name: str, length: int) -> str:
    """`name`, or when longer than `length` its start and a digest of the whole."""
    if len(name) <= length:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{name[: length - 65]}#{digest}"


def _live(key: str, member: str, now: datetime) -> list[Any]:
    return [_TABLE.c.key == key, _TABLE.c.member == member, _TABLE.c.expires_at > now]
