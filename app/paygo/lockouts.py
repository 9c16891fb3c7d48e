"""Phones locked out of account look-ups (too many wrong account numbers), for an operator
to see and clear. Shared by the CLI and the operator API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from paygo import audit
from paygo.conversations.sessions import Lockout
from paygo.errors import InvalidInput, NotFound
from paygo.pages import Page, check_limit, decode_cursor, encode_cursor
from paygo.phones import normalise

if TYPE_CHECKING:
    from paygo.backplane import Backplane
    from paygo.settings import Settings


@dataclass(frozen=True)
class Locked:
    """A phone that may not try account numbers until `until`."""

    phone: str
    failures: int
    last_at: datetime
    until: datetime


def lockout_for(*, settings: Settings, backplane: Backplane) -> Lockout:
    """The lookup lockout as the conversations keep it (on the backplane: Redis, else the
    database)."""
    return Lockout(
        backplane=backplane,
        failures=settings.lookup_lockout_failures,
        seconds=settings.lookup_lockout_seconds,
    )


def list_locked(
    *, lockout: Lockout, now: datetime, limit: int = 50, cursor: str | None = None
) -> Page[Locked]:
    """The phones locked now, by number."""
    check_limit(limit)
    after = str(decode_cursor("lockouts", cursor, 1)[0]) if cursor else ""
    found: list[Locked] = []
    for phone in lockout.phones(now=now):
        if phone <= after:
            continue
        count, last = lockout.recent(phone=phone, now=now)
        if last is not None and lockout.locked(phone=phone, now=now):
            found.append(Locked(phone, count, last, last + lockout.lock_for))
        if len(found) > limit:
            break
    more = len(found) > limit
    items = found[:limit]
    return Page(items=items, next=encode_cursor("lockouts", (items[-1].phone,)) if more else None)


def clear_lockout(
    *,
    session: Session,
    lockout: Lockout,
    phone: str,
    actor: str,
    reason: str,
    default_country: str,
    now: datetime,
) -> int:
    """Let a phone try account numbers again; return how many wrong ones were forgotten.

    The wrong numbers are forgotten at once, on the backplane; the audit line is written
    in the caller's transaction.
    """
    if not reason.strip():
        raise InvalidInput("say why: --reason is required to clear a lockout")
    e164 = normalise(phone, default_country)
    forgotten = lockout.clear(phone=e164, now=now)
    if not forgotten:
        raise NotFound(f"{e164} has typed no wrong account number lately", phone=e164)
    audit.record(
        session=session,
        actor=actor,
        action="lockout.clear",
        target_type="phone",
        target_id=e164,
        reason=reason.strip(),
        forgotten=forgotten,
    )
    return forgotten
