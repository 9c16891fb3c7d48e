"""USSD sessions between hops, and the lookup lockout, both kept on the backplane.

A session record is plain JSON: the engine's state, the `text` seen so far (Africa's
Talking resends every input joined by `*`), the last reply (a repeated hop gets the same
screen), and the hop count. Records expire a little after the network's 180 s session.
How a session ended is a row of its own (`record_session_end`).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from paygo.backplane import Backplane
from paygo.models import UssdSession

#: Wrong account numbers are counted over a day ("three wrong numbers in a day").
FAILURE_WINDOW = timedelta(days=1)


class UssdSessions:
    """Session records on the backplane (Redis, or the database), expiring on their own."""

    def __init__(self, backplane: Backplane, *, ttl_seconds: int) -> None:
        self.backplane = backplane
        self.ttl = timedelta(seconds=ttl_seconds)

    def load(self, session_id: str, *, now: datetime) -> dict[str, Any] | None:
        """The live record of a session, or None when unknown or expired."""
        return _decode(self.backplane.get(_session_key(session_id), now=now))

    def save(self, session_id: str, record: dict[str, Any], *, now: datetime) -> None:
        """Store a record for the session's lifetime."""
        self.backplane.put(_session_key(session_id), json.dumps(record), ttl=self.ttl, now=now)


def _session_key(session_id: str) -> str:
    return f"ussd:{session_id}"


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

    Each wrong number is a member of the phone's scored set on the backplane, scored by
    when it was typed (the conversation's clock). Actions only read it (`recent`,
    `locked`, `locks_at`); the failure itself is recorded when the conversation service
    applies the action's effect (`record_failure`).
    """

    def __init__(self, *, backplane: Backplane, failures: int, seconds: int) -> None:
        self.backplane = backplane
        self.failures = failures
        self.lock_for = timedelta(seconds=seconds)
        self.window = max(FAILURE_WINDOW, self.lock_for)

    def locked(self, *, phone: str, now: datetime) -> bool:
        """True while `phone` may not try account numbers."""
        count, last = self.recent(phone=phone, now=now)
        return count >= self.failures and last is not None and last + self.lock_for > now

    def locks_at(self, count: int) -> bool:
        """True when one more wrong number, after `count` recent ones, locks the phone."""
        return count + 1 >= self.failures and self.lock_for > timedelta(0)

    def record_failure(self, *, phone: str, now: datetime) -> None:
        """Count one wrong number from `phone` (and forget those past the window)."""
        self.backplane.add_scored(
            _failures_key(phone),
            uuid.uuid4().hex,
            now.timestamp(),
            drop_below=(now - self.window).timestamp(),
            ttl=self.window,
            now=now,
        )

    def recent(self, *, phone: str, now: datetime) -> tuple[int, datetime | None]:
        """How many wrong numbers `phone` typed within the window, and when the last was."""
        since = (now - self.window).timestamp()
        scores = [s for _, s in self.backplane.scored(_failures_key(phone), above=since, now=now)]
        last = max(scores, default=None)
        return len(scores), datetime.fromtimestamp(last, now.tzinfo) if last else None

    def phones(self, *, now: datetime) -> list[str]:
        """Every phone with a wrong number within the window (an operator's list)."""
        prefix = _failures_key("")
        return [key.removeprefix(prefix) for key in self.backplane.keys(prefix, now=now)]

    def clear(self, *, phone: str, now: datetime) -> int:
        """Forget a phone's wrong numbers, which unlocks it; return how many were forgotten."""
        key = _failures_key(phone)
        forgotten = len(self.backplane.scored(key, above=float("-inf"), now=now))
        self.backplane.delete(key)
        return forgotten


def _failures_key(phone: str) -> str:
    return f"lookup-fail:{phone}"
