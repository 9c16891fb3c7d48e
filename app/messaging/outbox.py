"""The outbox: domain code writes rows here in its own transaction; a job sends them."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.models import OutboundMessage


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
    return message
