"""The reconciler: match a stored payment to an account and credit it, exactly once.

`reconcile_payment` is what the payment jobs run, on a payment row they have locked
(`claim_waiting_payment` or `lock_payment`), so any number of runs (retries, duplicates,
a re-run after a crash) serialise and all but the first find nothing left to do.
Crediting, the device count, the token and the receipt SMS are written by
`paygo.ledger.crediting.credit_payment` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, literal_column
from sqlmodel import Session, col, select

from paygo import audit
from paygo.accounts import get_account
from paygo.crypto import KeyBox
from paygo.db import lock_row
from paygo.errors import Conflict, NotFound, PaymentError
from paygo.ledger.crediting import credit_payment
from paygo.messaging.outbox import Claimer, Outgoing
from paygo.models import Account, OutboundMessage, Payment, PaymentStatus, row_id
from paygo.payments.matching import NoMatch, match_payment
from paygo.texts.catalogue import Catalogue


@dataclass(frozen=True)
class Outcome:
    """Where a payment stands after reconciling: credited (how), unmatched (why), or other."""

    payment_id: int
    status: str
    account_number: str | None = None
    rule: str | None = None
    message_id: int | None = None
    reason: str | None = None
    #: What to send once the transaction commits (the receipt, when this run credited it).
    outgoing: tuple[Outgoing, ...] = ()


def lock_payment(*, session: Session, payment_id: int) -> Payment:
    """Load a payment with its row locked for the rest of the transaction."""
    payment = lock_row(session, Payment, payment_id)
    if payment is None:
        raise NotFound(f"no payment #{payment_id}", payment_id=payment_id)
    return payment


class NotCreditable(PaymentError):
    """A payment matched to an account that cannot take it automatically (another
    currency, a box now held by someone else): it goes to the suspense queue."""


def reconcile_payment(
    *,
    session: Session,
    keys: KeyBox,
    texts: Catalogue,
    payment: Payment,
    now: datetime,
    default_country: str,
    claim: Claimer | None = None,
) -> Outcome:
    """Match and credit a received payment the caller has locked, or put it in suspense;
    a no-op once done.

    Raises NotCreditable when the match cannot be credited: the caller rolls back and
    suspends the payment with `suspend_payment` in a new transaction. With `claim` the
    receipt is written already claimed: the caller sends `Outcome.outgoing` after commit.
    """
    if payment.status != PaymentStatus.RECEIVED:
        return _outcome(session, payment)
    found = match_payment(session=session, payment=payment, default_country=default_country)
    if isinstance(found, NoMatch):
        return _suspend(session, payment, found.reason)
    try:
        result = credit_payment(
            session=session,
            keys=keys,
            texts=texts,
            payment=payment,
            account_id=row_id(found.account.id),
            rule=found.rule,
            now=now,
            claim=claim,
        )
    except PaymentError as exc:
        raise NotCreditable(
            f"matched account {found.account.number} ({found.rule}) but {exc.message}",
            payment_id=payment.id,
        ) from exc
    return Outcome(
        payment_id=result.payment_id,
        status=PaymentStatus.CREDITED,
        account_number=result.account_number,
        rule=found.rule,
        message_id=result.message_id,
        outgoing=result.outgoing,
    )


def suspend_payment(*, session: Session, payment_id: int, reason: str) -> Outcome:
    """Put a payment still waiting to be reconciled in the suspense queue, with why."""
    payment = lock_payment(session=session, payment_id=payment_id)
    if payment.status != PaymentStatus.RECEIVED:
        return _outcome(session, payment)
    return _suspend(session, payment, reason)


def assign_payment(
    *,
    session: Session,
    keys: KeyBox,
    texts: Catalogue,
    payment_id: int,
    account_number: str,
    actor: str,
    now: datetime,
) -> Outcome:
    """Credit a payment from the suspense queue to the account an operator names."""
    payment = lock_payment(session=session, payment_id=payment_id)
    if payment.status == PaymentStatus.CREDITED:
        held = session.get(Account, payment.account_id)
        raise Conflict(
            f"payment #{payment_id} is already credited to account {held.number if held else '?'}",
            payment_id=payment_id,
        )
    if payment.status not in (PaymentStatus.UNMATCHED, PaymentStatus.RECEIVED):
        raise Conflict(
            f"payment #{payment_id} is {payment.status}; only unmatched payments can be assigned",
            payment_id=payment_id,
        )
    account = get_account(session=session, number=account_number)
    result = credit_payment(
        session=session,
        keys=keys,
        texts=texts,
        payment=payment,
        account_id=row_id(account.id),
        rule="operator",
        now=now,
        actor=actor,
    )
    audit.record(
        session=session,
        actor=actor,
        action="payment.assigned",
        target_type="payment",
        target_id=payment_id,
        account=account.number,
        previous_reason=payment.status_reason,
    )
    return replace(_outcome(session, payment), outgoing=result.outgoing)


def unmatched_payments(*, session: Session, limit: int = 100) -> list[Payment]:
    """The suspense queue, oldest first."""
    return list(
        session.exec(
            select(Payment)
            .where(Payment.status == PaymentStatus.UNMATCHED)
            .order_by(col(Payment.received_at), col(Payment.id))
            .limit(limit)
        )
    )


def waiting_payment_ids(
    *, session: Session, received_before: datetime, limit: int = 500
) -> list[int]:
    """Payments stored but not yet reconciled (their job was lost or is late)."""
    return [
        i
        for i in session.exec(
            select(Payment.id)
            .where(Payment.status == PaymentStatus.RECEIVED)
            .where(col(Payment.received_at) < received_before)
            .order_by(col(Payment.id))
            .limit(limit)
        )
        if i is not None
    ]


def claim_waiting_payment(*, session: Session, skip: Collection[int] = ()) -> Payment | None:
    """Lock the oldest payment waiting to be reconciled that no one else holds, and return
    it for `reconcile_payment` (which locks nothing more on it).

    `FOR UPDATE SKIP LOCKED` on PostgreSQL: concurrent drains each take a different
    payment without waiting for one another. (SQLite's write transaction is already
    exclusive.) `skip`: payments this caller has given up on for now.
    """
    return session.exec(
        select(Payment)
        .where(*_waiting(skip))
        .order_by(col(Payment.id))
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).first()


def any_waiting(*, session: Session, skip: Collection[int] = ()) -> bool:
    """Whether any payment but those in `skip` waits to be reconciled, locked or not."""
    found = session.exec(select(Payment.id).where(*_waiting(skip)).limit(1)).first()
    return found is not None


def _waiting(skip: Collection[int]) -> list[ColumnElement[bool]]:
    """The conditions of a payment waiting to be reconciled, but for those in `skip`."""
    # The status as a literal, so the planner matches the partial index ix_payments_waiting
    # even in a prepared (generic) plan.
    conditions = [col(Payment.status) == literal_column("'received'")]
    return conditions + [col(Payment.id).not_in(list(skip))] if skip else conditions


def _suspend(session: Session, payment: Payment, reason: str) -> Outcome:
    payment.status, payment.status_reason = PaymentStatus.UNMATCHED, reason[:300]
    session.add(payment)
    session.flush()
    return _outcome(session, payment)


def _outcome(session: Session, payment: Payment) -> Outcome:
    account = session.get(Account, payment.account_id) if payment.account_id else None
    message_id = None
    if payment.status == PaymentStatus.CREDITED:
        message_id = session.exec(
            select(OutboundMessage.id).where(OutboundMessage.dedupe_key == f"payment:{payment.id}")
        ).first()
    return Outcome(
        payment_id=row_id(payment.id),
        status=payment.status,
        account_number=account.number if account else None,
        rule=payment.match_rule,
        message_id=message_id,
        reason=payment.status_reason,
    )
