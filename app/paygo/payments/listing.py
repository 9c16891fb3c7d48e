"""Payments as lists: every payment with filters (rejected and unmatched ones included, each
with its reason), and the suspense queue. Shared by the CLI and the operator API."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from paygo.errors import InvalidInput
from paygo.models import Payment, PaymentStatus
from paygo.pages import Page, page

STATUSES = tuple(s.value for s in PaymentStatus)


def list_payments(
    *,
    session: Session,
    account_id: int | None = None,
    status: str | None = None,
    provider: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Payment]:
    """Payments newest first, filtered by account, status, provider and arrival time."""
    query = select(Payment)
    if account_id is not None:
        query = query.where(col(Payment.account_id) == account_id)
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", status=status)
        query = query.where(col(Payment.status) == status)
    if provider is not None:
        query = query.where(col(Payment.provider) == provider.strip().lower())
    if since is not None:
        query = query.where(col(Payment.received_at) >= since)
    return page(
        session=session,
        query=query,
        listing="payments",
        order=[col(Payment.id)],
        key=lambda p: (p.id or 0,),
        limit=limit,
        cursor=cursor,
    )


def suspense_queue(
    *, session: Session, limit: int = 50, cursor: str | None = None
) -> Page[Payment]:
    """The payments no rule could place, oldest first."""
    return page(
        session=session,
        query=select(Payment).where(col(Payment.status) == PaymentStatus.UNMATCHED),
        listing="unmatched",
        order=[col(Payment.id)],
        key=lambda p: (p.id or 0,),
        limit=limit,
        cursor=cursor,
        descending=False,
    )
