"""Reversals: an operator takes a credited payment back, with a reason, on the record.

The account loses what the payment gave (money, days, an activation or a pay-off), and when
the payment put codes on the box a SET_TIME code with the server's remaining days goes to
the customer, so the box and the server agree again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from paygo import audit
from paygo.crypto import KeyBox
from paygo.errors import Conflict, InvalidInput, PaymentError
from paygo.ledger.crediting import tokens_for_payment
from paygo.ledger.locks import Held, hold_account
from paygo.ledger.operator import operator_token
from paygo.messaging.outbox import Outgoing
from paygo.models import (
    AccountStatus,
    AuditLog,
    DeviceStatus,
    Payment,
    PaymentPlan,
    PaymentStatus,
    Token,
)
from paygo.payments.reconcile import lock_payment
from paygo.texts.catalogue import Catalogue
from paygo.tokens.codec import TokenKind


@dataclass(frozen=True)
class Reversal:
    """What a reversal took back, and the SET_TIME code(s) sent to the box."""

    payment_id: int
    account_number: str
    amount: int
    days_removed: float
    tokens: list[Token]
    outgoing: tuple[Outgoing, ...] = ()  # the SMS carrying the code, once committed


def reverse_payment(
    *,
    session: Session,
    keys: KeyBox,
    texts: Catalogue,
    payment_id: int,
    reason: str,
    actor: str,
    now: datetime,
) -> Reversal:
    """Take a credited payment back off its account; audited with who and why."""
    if not reason.strip():
        raise InvalidInput("say why: a reversal needs a reason")
    payment = lock_payment(session=session, payment_id=payment_id)
    if payment.status != PaymentStatus.CREDITED or payment.account_id is None:
        raise Conflict(
            f"payment #{payment_id} is {payment.status}; only credited payments can be reversed",
            payment_id=payment_id,
        )
    held = hold_account(session=session, account_id=payment.account_id)
    account = held.account
    issued = tokens_for_payment(session=session, payment_id=payment_id)
    days = _undo_credit(session, held, payment, issued)
    payment.status, payment.reversed_at = PaymentStatus.REVERSED, now
    payment.status_reason = f"reversed by {actor}: {reason}"[:300]
    account.updated_at = now
    session.add_all([payment, account])
    audit.record(
        session=session,
        actor=actor,
        action="payment.reversed",
        target_type="payment",
        target_id=payment_id,
        account=account.number,
        amount=payment.amount,
        days=days,
        reason=reason,
    )
    reset = None
    if any(t.type != TokenKind.COUNTER_SYNC for t in issued):
        # The box may already hold the days: set it to what the server now says is left.
        reset = operator_token(
            session=session,
            keys=keys,
            texts=texts,
            held=held,
            kind=TokenKind.SET_TIME,
            actor=actor,
            now=now,
            reason=f"reversal of payment #{payment_id}: {reason}",
        )
    session.flush()
    return Reversal(
        payment_id=payment_id,
        account_number=account.number,
        amount=payment.amount,
        days_removed=days,
        tokens=reset.tokens if reset else [],
        outgoing=reset.outgoing if reset else (),
    )


def _undo_credit(session: Session, held: Held, payment: Payment, issued: list[Token]) -> float:
    """Undo the money, days and status changes of one payment; return the days removed."""
    account, device = held.account, held.device
    plan = session.get(PaymentPlan, account.plan_id)
    if plan is None:
        raise PaymentError(f"account {account.number} has no plan")
    snapshot = _credit_snapshot(session, payment)
    steps: int = snapshot.get(
        "steps", sum(t.value_raw for t in issued if t.type == TokenKind.ADD_TIME)
    )
    if snapshot:
        account.total_paid -= snapshot["counted"]
        account.overpayment -= snapshot["overpayment"]
        delta = snapshot["remainder_after"] - snapshot["remainder_before"]
        account.remainder = max(0, account.remainder - delta)
    else:  # credited before snapshots were kept: money first from any overpayment
        over = min(account.overpayment, payment.amount)
        account.overpayment -= over
        account.total_paid = max(0, account.total_paid - (payment.amount - over))
    days = steps / device.time_divider
    if days and account.credit_until is not None:
        account.credit_until -= timedelta(days=days)
    if account.status == AccountStatus.PAID_OFF and any(
        t.type == TokenKind.DISABLE_PAYG for t in issued
    ):
        account.status, account.paid_off_at = AccountStatus.ACTIVE, None
        device.status = DeviceStatus.ACTIVE
    if account.status == AccountStatus.ACTIVE and account.total_paid < plan.deposit:
        account.status = AccountStatus.PENDING_DEPOSIT
    session.add(device)
    return days


def _credit_snapshot(session: Session, payment: Payment) -> dict[str, Any]:
    """What crediting this payment did, as the reconciler recorded it ({} if it did not)."""
    entry = session.exec(
        select(AuditLog)
        .where(AuditLog.action == "payment.credited")
        .where(AuditLog.target_type == "payment")
        .where(AuditLog.target_id == str(payment.id))
        .order_by(col(AuditLog.id).desc())
    ).first()
    if entry is None:
        return {}
    detail: dict[str, Any] = json.loads(entry.detail)
    return detail
