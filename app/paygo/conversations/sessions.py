"""Where USSD sessions live between hops (Redis, else the database), and the lookup lockout.

A session record is plain JSON: the engine's state, the `text` seen so far (Africa's
Talking resends every input joined by `*`), the last reply (a repeated hop gets the same
screen), and the hop count. Records expire a little after the network's 180 s session.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta
from typing import Any, Protocol

from redis import Redis
from sqlmodel import Session, col, func, select

from paygo.db import Database
from paygo.models import LookupFailure, UssdSession

_SESSION_KEY = "paygo:ussd:{}"
_FAILURES_KEY = "paygo:lookup-fail:{}"
#: Wrong account numbers are counted over a day ("three wrong numbers in a day").
FAILURE_WINDOW = timedelta(days=1)


class SessionStore(Protocol):
    """Keeps USSD session records between hops."""

    def load(self, session_id: str, *, now: datetime) -> dict[str, Any] | None:
        """The live record of a session, or None when unknown or expired."""

    def save(
        self,
        session_id: str,
        record: dict[str, Any],
        *,
        phone: str,
        service_code: str,
        now: datetime,
    ) -> None:
        """Store a record for the session's lifetime."""


class RedisSessions:
    """Session records in Redis, expiring on their own."""

    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self._held: tuple[int, Redis] | None = None

    @property
    def client(self) -> Redis:
        """One connection kept per process (thread-safe: redis-py locks it).

        Taking a connection from the pool and giving it back costs more than the command
        itself; a hop makes two. A forked process opens its own.
        """
        if self._held is None or self._held[0] != os.getpid():
            self._held = (
                os.getpid(),
                Redis(connection_pool=self.redis.connection_pool, single_connection_client=True),
            )
        return self._held[1]

    def load(self, session_id: str, *, now: datetime) -> dict[str, Any] | None:
        """The live record of a session, or None when unknown or expired."""
        raw = self.client.get(_SESSION_KEY.format(session_id))
        return _decode(raw)

    def save(
        self,
        session_id: str,
        record: dict[str, Any],
        *,
        phone: str,
        service_code: str,
        now: datetime,
    ) -> None:
        """Store a record for the session's lifetime."""
        self.client.set(_SESSION_KEY.format(session_id), json.dumps(record), ex=self.ttl)


class DatabaseSessions:
    """Session records in the `ussd_sessions` table, for installs without Redis."""

    def __init__(self, db: Database, *, ttl_seconds: int) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_seconds)

    def load(self, session_id: str, *, now: datetime) -> dict[str, Any] | None:
        """The live record of a session, or None when unknown or expired."""
        with self.db.session() as session:
            row = _row(session, session_id)
        if row is None or row.expires_at is None or row.expires_at <= now:
            return None
        return _decode(row.state)

    def save(
        self,
        session_id: str,
        record: dict[str, Any],
        *,
        phone: str,
        service_code: str,
        now: datetime,
    ) -> None:
        """Store a record for the session's lifetime."""
        with self.db.transaction() as session:
            row = _row(session, session_id, lock=True) or UssdSession(
                session_id=session_id, phone=phone, service_code=service_code, created_at=now
            )
            row.state = json.dumps(record)
            row.hops = int(record.get("hops", 0))
            row.updated_at = now
            row.expires_at = now + self.ttl
            session.add(row)


def _row(session: Session, session_id: str, *, lock: bool = False) -> UssdSession | None:
    query = select(UssdSession).where(UssdSession.session_id == session_id)
    return session.exec(query.with_for_update() if lock else query).first()


def _decode(raw: str | bytes | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def record_session_end(
    *,
    session: Session,
    session_id: str,
    phone: str,
    service_code: str,
    status: str,
    hops: int,
    duration_ms: int,
    error: str | None,
    now: datetime,
) -> UssdSession:
    """Store how a session ended (the network's end-of-session notification)."""
    row = _row(session, session_id, lock=True) or UssdSession(
        session_id=session_id, phone=phone, service_code=service_code, created_at=now
    )
    row.status = status
    row.hops = hops
    row.duration_ms = duration_ms
    row.error = error[:300] if error else None
    row.state = None
    row.updated_at = now
    row.expires_at = now
    session.add(row)
    session.flush()
    return row


class Lockout:
    """Counts wrong account numbers per phone; too many in a day locks the phone a while.

    Actions only read it (`recent`, `locked`, `locks_at`); the failure itself is recorded
    when the conversation service applies the action's effect (`record_failure`).
    """

    def __init__(self, *, redis: Redis | None, failures: int, seconds: int) -> None:
        self.redis = redis
        self.failures = failures
        self.lock_for = timedelta(seconds=seconds)
        self.window = max(FAILURE_WINDOW, self.lock_for)

    def locked(self, *, session: Session, phone: str, now: datetime) -> bool:
        """True while `phone` may not try account numbers."""
        count, last = self.recent(session=session, phone=phone, now=now)
        return count >= self.failures and last is not None and last + self.lock_for > now

    def locks_at(self, count: int) -> bool:
        """True when one more wrong number, after `count` recent ones, locks the phone."""
        return count + 1 >= self.failures and self.lock_for > timedelta(0)

    def record_failure(self, *, session: Session, phone: str, now: datetime) -> None:
        """Count one wrong number from `phone` (and forget those past the window)."""
        if self.redis is not None:
            key = _FAILURES_KEY.format(phone)
            pipe = self.redis.pipeline()
            pipe.zadd(key, {uuid.uuid4().hex: now.timestamp()})
            pipe.zremrangebyscore(key, "-inf", (now - self.window).timestamp())
            pipe.expire(key, int(self.window.total_seconds()))
            pipe.execute()
        else:
            session.add(LookupFailure(phone=phone, created_at=now))
            session.flush()

    def recent(self, *, session: Session, phone: str, now: datetime) -> tuple[int, datetime | None]:
        """How many wrong numbers `phone` typed within the window, and when the last was."""
        since = now - self.window
        if self.redis is not None:
            pairs: list[tuple[bytes, float]] = self.redis.zrangebyscore(  # type: ignore[assignment]
                _FAILURES_KEY.format(phone), f"({since.timestamp()}", "+inf", withscores=True
            )
            last = max((score for _, score in pairs), default=None)
            return len(pairs), datetime.fromtimestamp(last, now.tzinfo) if last else None
        count, last_at = session.exec(
            select(func.count(), func.max(LookupFailure.created_at))
            .where(LookupFailure.phone == phone)
            .where(col(LookupFailure.created_at) > since)
        ).one()
        return int(count), _aware(last_at, now)

    def phones(self, *, session: Session, now: datetime) -> list[str]:
        """Every phone with a wrong number within the window (an operator's list)."""
        if self.redis is not None:
            prefix = _FAILURES_KEY.format("")
            keys = self.redis.scan_iter(match=prefix + "*", count=500)
            return sorted(key.decode().removeprefix(prefix) for key in keys)
        query = (
            select(LookupFailure.phone)
            .where(col(LookupFailure.created_at) > now - self.window)
            .distinct()
        )
        return sorted(session.exec(query))

    def clear(self, *, session: Session, phone: str) -> int:
        """Forget a phone's wrong numbers, which unlocks it; return how many were forgotten."""
        if self.redis is not None:
            key = _FAILURES_KEY.format(phone)
            forgotten = int(self.redis.zcard(key))
            self.redis.delete(key)
            return forgotten
        rows = list(session.exec(select(LookupFailure).where(LookupFailure.phone == phone)))
        for row in rows:
            session.delete(row)
        session.flush()
        return len(rows)


def _aware(value: Any, now: datetime) -> datetime | None:
    # func.max bypasses the column type, so SQLite hands back a naive (UTC) datetime or text.
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
