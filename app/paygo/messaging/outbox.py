"""The outbox: domain code writes rows here in its own transaction; a job sends them.

`queue_message` also notes the new row's id on the session; when that session's
transaction commits, the messaging setup (paygo.messaging.setup) hands the ids to the
dispatcher, so callers never enqueue anything themselves.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, or_, select

from paygo.models import MessageStatus, OutboundMessage

#: session.info key holding the ids written in the session's current transaction.
NEW_IDS = "paygo.outbox.new"
#: session.info key: a callable that marks each new row claimed for sending by the
#: writer itself (see dispatcher.ClaimOnWrite); such rows are listed under NEW_CLAIMED.
CLAIM_ON_WRITE = "paygo.outbox.claim-on-write"
NEW_CLAIMED = "paygo.outbox.new-claimed"
#: States an operator may send again by hand.
RETRYABLE = (MessageStatus.FAILED, MessageStatus.UNDELIVERABLE)


def queue_message(
    *,
    session: Session,
    recipient: str,
    body: str,
    kind: str = "reply",
    dedupe_key: str | None = None,
    account_id: int | None = None,
    payment_id: int | None = None,
) -> OutboundMessage:
    """Write one outbound SMS in the caller's transaction (once per dedupe key)."""
    message = OutboundMessage(
        recipient=recipient,
        body=body,
        kind=kind,
        dedupe_key=dedupe_key,
        account_id=account_id,
        payment_id=payment_id,
    )
    claim = session.info.get(CLAIM_ON_WRITE)
    # Not inside a savepoint: one rolled back would leave a claim for a row never written.
    claimed = claim is not None and not session.in_nested_transaction() and claim(message)
    if dedupe_key is None:
        session.add(message)
        session.flush()
    else:
        # One statement whether or not the key is taken: no look-up first, no savepoint,
        # and a concurrent writer of the same key simply leaves us nothing to insert.
        inserted = session.scalars(
            _insert_once(session.get_bind().dialect.name)
            .values({c.key: getattr(message, c.key) for c in _COLUMNS})
            .returning(OutboundMessage)
        ).first()
        if inserted is None:  # already written: theirs is the message
            return session.exec(
                select(OutboundMessage).where(OutboundMessage.dedupe_key == dedupe_key)
            ).one()
        message = inserted
    if claimed:
        session.info.setdefault(NEW_CLAIMED, []).append(message)
    session.info.setdefault(NEW_IDS, set()).add(message.id)
    return message


#: Every column but the id, which the database assigns.
_COLUMNS = [
    c
    for c in OutboundMessage.__table__.columns  # type: ignore[attr-defined]
    if c.key != "id"
]


def _insert_once(dialect_name: str) -> Insert:
    """`INSERT ... ON CONFLICT (dedupe_key) DO NOTHING` for this database."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement: Insert = dialect.insert(OutboundMessage).on_conflict_do_nothing(
        index_elements=["dedupe_key"]
    )
    return statement


def is_new(session: Session, message: OutboundMessage) -> bool:
    """Whether `message` was written in this session's open transaction."""
    return message.id in session.info.get(NEW_IDS, ())


def take_new_ids(session: Session) -> tuple[list[int], list[OutboundMessage]]:
    """Remove and return what was written since the last commit or rollback: the ids of
    rows to hand to the dispatcher, and the rows their writer claimed to send itself."""
    claimed: list[OutboundMessage] = session.info.pop(NEW_CLAIMED, [])
    own = {m.id for m in claimed}
    return sorted(i for i in session.info.pop(NEW_IDS, set()) if i not in own), claimed


def forget_new(session: Session) -> None:
    """Forget the rows written in a transaction that rolled back."""
    session.info.pop(NEW_IDS, None)
    session.info.pop(NEW_CLAIMED, None)


def due(*, session: Session, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """(id, attempts) of queued messages whose next attempt is due, oldest first."""
    return _ids_and_attempts(session, MessageStatus.QUEUED, now, limit)


def expired_sending(*, session: Session, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """(id, attempts) of messages left in `sending` past their lease (crash, unknown outcome)."""
    return _ids_and_attempts(session, MessageStatus.SENDING, now, limit)


def _ids_and_attempts(
    session: Session, status: MessageStatus, now: datetime, limit: int
) -> list[tuple[int, int]]:
    rows = session.exec(
        select(OutboundMessage.id, OutboundMessage.attempts)
        .where(OutboundMessage.status == status)
        .where(
            or_(
                col(OutboundMessage.next_attempt_at).is_(None),
                col(OutboundMessage.next_attempt_at) <= now,
            )
        )
        .order_by(col(OutboundMessage.id))
        .limit(limit)
    )
    return [(int(i), int(a)) for i, a in rows if i is not None]


def dead_letters(*, session: Session, limit: int = 100) -> list[OutboundMessage]:
    """Messages that gave up (status failed), newest first."""
    return list(
        session.exec(
            select(OutboundMessage)
            .where(OutboundMessage.status == MessageStatus.FAILED)
            .order_by(col(OutboundMessage.id).desc())
            .limit(limit)
        )
    )


def requeue(
    *, session: Session, message: OutboundMessage, now: datetime, reason: str
) -> OutboundMessage:
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
