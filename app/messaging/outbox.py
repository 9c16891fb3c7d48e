"""The outbox: domain code writes rows here in its own transaction; a job sends them.

`queue_message` also notes the new row's id on the session; when that session's
transaction commits, the messaging setup (app.messaging.setup) hands the ids to the
dispatcher, so callers never enqueue anything themselves.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from app.models import MessageStatus, OutboundMessage

#: session.info key holding the ids written in the session's current transaction.
NEW_IDS = "paygo.outbox.new"
#: States an operator may send again by hand.
RETRYABLE = (MessageStatus.FAILED, MessageStatus.UNDELIVERABLE)


def queue_message(*, session: Session, recipient: str, body: str, kind: str = "reply",
                  dedupe_key: str | None = None, account_id: int | None = None,
                  payment_id: int | None = None) -> OutboundMessage:
    """Write one outbound SMS in the caller's transaction (once per dedupe key)."""
    if dedupe_key is not None:
        existing = session.exec(select(OutboundMessage)
                                .where(OutboundMessage.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return existing
    message = OutboundMessage(recipient=recipient, body=body, kind=kind, dedupe_key=dedupe_key,
                              account_id=account_id, payment_id=payment_id)
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        # A concurrent writer stored the same dedupe key first: theirs is the message.
        found = session.exec(select(OutboundMessage)
                             .where(OutboundMessage.dedupe_key == dedupe_key)).one()
        return found
    session.info.setdefault(NEW_IDS, set()).add(message.id)
    return message


def is_new(session: Session, message: OutboundMessage) -> bool:
    """Whether `message` was written in this session's open transaction."""
    return message.id in session.info.get(NEW_IDS, ())


def take_new_ids(session: Session) -> list[int]:
    """Remove and return the ids written since the last commit or rollback."""
    return sorted(session.info.pop(NEW_IDS, set()))


def due(*, session: Session, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """(id, attempts) of queued messages whose next attempt is due, oldest first."""
    return _ids_and_attempts(session, MessageStatus.QUEUED, now, limit)


def expired_sending(*, session: Session, now: datetime,
                    limit: int = 500) -> list[tuple[int, int]]:
    """(id, attempts) of messages left in `sending` past their lease (crash, unknown outcome)."""
    return _ids_and_attempts(session, MessageStatus.SENDING, now, limit)


def _ids_and_attempts(session: Session, status: MessageStatus, now: datetime,
                      limit: int) -> list[tuple[int, int]]:
    rows = session.exec(
        select(OutboundMessage.id, OutboundMessage.attempts)
        .where(OutboundMessage.status == status)
        .where(or_(col(OutboundMessage.next_attempt_at).is_(None),
                   col(OutboundMessage.next_attempt_at) <= now))
        .order_by(col(OutboundMessage.id)).limit(limit))
    return [(int(i), int(a)) for i, a in rows if i is not None]


def dead_letters(*, session: Session, limit: int = 100) -> list[OutboundMessage]:
    """Messages that gave up (status failed), newest first."""
    return list(session.exec(
        select(OutboundMessage).where(OutboundMessage.status == MessageStatus.FAILED)
        .order_by(col(OutboundMessage.id).desc()).limit(limit)))


def requeue(*, session: Session, message: OutboundMessage, now: datetime,
            reason: str) -> OutboundMessage:
    """Put a failed or undeliverable message back in the queue with a fresh attempt count."""
    message.status = MessageStatus.QUEUED
    message.status_reason = reason[:300]
    message.attempts = 0
    message.next_attempt_at = None
    message.updated_at = now
    session.add(message)
    session.flush()
    session.info.setdefault(NEW_IDS, set()).add(message.id)
    return message
