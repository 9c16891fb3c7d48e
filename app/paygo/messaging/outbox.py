"""The outbox: domain code writes rows here in the caller's transaction, and returns them.

`queue_message` returns the row it wrote. The code that commits the transaction hands
what was written (`outgoing`) to `paygo.messaging.sending.send_committed` once the commit
is done; the outbox sweep sends whatever a crash or a lost queue left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, or_, select

from paygo.models import MessageStatus, OutboundMessage
from paygo.pages import Page, page

#: States an operator may send again by hand.
RETRYABLE = (MessageStatus.FAILED, MessageStatus.UNDELIVERABLE)


@dataclass(frozen=True)
class Claim:
    """A message this worker owns for one attempt."""

    message_id: int
    attempt: int
    provider: str
    recipient: str
    body: str


#: Marks a row claimed for sending as it is written (dispatcher.ClaimOnWrite); False
#: leaves it queued.
Claimer = Callable[[OutboundMessage], bool]
#: What a writer hands to `send_committed` for a row it wrote: the row's id (the
#: dispatcher claims it and sends it), or its Claim when it was written already claimed.
Outgoing = int | Claim


def queue_message(
    *,
    session: Session,
    recipient: str,
    body: str,
    kind: str = "reply",
    dedupe_key: str | None = None,
    account_id: int | None = None,
    payment_id: int | None = None,
    claim: Claimer | None = None,
) -> OutboundMessage | None:
    """Write one outbound SMS in the caller's transaction; None when its dedupe key is taken.

    With `claim`, the row may be written already claimed by the writer, who then sends it
    itself once its transaction commits (see `outgoing`).
    """
    message = OutboundMessage(
        recipient=recipient,
        body=body,
        kind=kind,
        dedupe_key=dedupe_key,
        account_id=account_id,
        payment_id=payment_id,
    )
    # Not inside a savepoint: one rolled back would leave a claim for a row never written.
    if claim is not None and not session.in_nested_transaction():
        claim(message)
    if dedupe_key is None:
        session.add(message)
        session.flush()
        return message
    # One statement whether or not the key is taken: no look-up first, no savepoint,
    # and a concurrent writer of the same key simply leaves us nothing to insert.
    inserted: OutboundMessage | None = session.scalars(
        _insert_once(session.get_bind().dialect.name)
        .values({c.key: getattr(message, c.key) for c in _COLUMNS})
        .returning(OutboundMessage)
    ).first()
    return inserted


def outgoing(message: OutboundMessage) -> Outgoing:
    """What to send once the transaction that wrote `message` commits: its id, or its Claim
    when it was written already claimed (`queue_message` with `claim`)."""
    if message.id is None:
        raise RuntimeError("the message has no id; flush first")
    if message.status == MessageStatus.SENDING and message.provider is not None:
        return Claim(
            message.id, message.attempts, message.provider, message.recipient, message.body
        )
    return message.id


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


def list_messages(
    *,
    session: Session,
    recipient: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[OutboundMessage]:
    """Messages newest first, to one recipient (E.164) or in one status."""
    query = select(OutboundMessage)
    if recipient is not None:
        query = query.where(col(OutboundMessage.recipient) == recipient)
    if status is not None:
        query = query.where(col(OutboundMessage.status) == status)
    return page(
        session=session,
        query=query,
        listing=f"messages-{status or 'all'}",
        order=[col(OutboundMessage.id)],
        key=lambda message: (message.id or 0,),
        limit=limit,
        cursor=cursor,
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
    return message
