"""Cash and manual payments: an operator records a receipt, credited like mobile money."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from paygo import audit
from paygo.crypto import KeyBox
from paygo.errors import Conflict, InvalidInput
from paygo.ledger.crediting import CreditResult, credit_payment
from paygo.models import Account, Payment, PaymentPlan, row_id
from paygo.payments.reconcile import lock_payment
from paygo.texts.catalogue import Catalogue

#: Longest receipt number kept as a manual payment's reference (the provider id column).
MAX_REFERENCE = 80


def record_manual_payment(
    *,
    session: Session,
    keys: KeyBox,
    texts: Catalogue,
    account: Account,
    amount: int,
    actor: str,
    now: datetime,
    reference: str | None = None,
) -> CreditResult:
    """Record a cash or manual payment and credit it exactly as mobile money is credited.

    Recording the same reference again for the same account and amount is harmless: it
    returns what the first recording did. The caller sends `CreditResult.outgoing` (the
    receipt) once its transaction commits.
    """
    if amount <= 0:
        raise InvalidInput("the amount must be positive", amount=amount)
    reference = (reference or "").strip() or None
    if reference is not None and len(reference) > MAX_REFERENCE:
        raise InvalidInput(
            f"a reference has at most {MAX_REFERENCE} characters",
            reference=reference[:MAX_REFERENCE],
        )
    payment = _manual_payment(session, account, amount, actor, now, reference)
    return credit_payment(
        session=session,
        keys=keys,
        texts=texts,
        payment=payment,
        account_id=row_id(account.id),
        rule="manual",
        now=now,
        actor=actor,
    )


def _manual_payment(
    session: Session,
    account: Account,
    amount: int,
    actor: str,
    now: datetime,
    reference: str | None,
) -> Payment:
    """The stored payment for this receipt, locked: the one recorded before, or a new one."""
    plan = session.get(PaymentPlan, account.plan_id)
    assert plan is not None
    txn_id = reference or f"manual-{uuid.uuid4().hex}"
    payment = _find_manual(session, txn_id)
    if payment is None:
        payment = Payment(
            provider="manual",
            provider_txn_id=txn_id,
            amount=amount,
            currency=plan.currency,
            reference=reference,
            paid_at=now,
            received_at=now,
            raw=json.dumps({"recorded_by": actor, "reference": reference}),
        )
        try:
            with session.begin_nested():
                session.add(payment)
                session.flush()
        except IntegrityError:
            # Another operator recorded the same receipt at the same moment: use theirs.
            payment = _find_manual(session, txn_id)
            assert payment is not None
        else:
            audit.record(
                session=session,
                actor=actor,
                action="payment.record",
                target_type="account",
                target_id=account.number,
                amount=amount,
                reference=reference,
                payment_id=payment.id,
            )
            return payment  # written by this transaction: no one else can hold it
    payment = lock_payment(session=session, payment_id=row_id(payment.id))
    if payment.account_id not in (None, account.id) or payment.amount != amount:
        raise Conflict(
            f"reference {reference!r} was recorded already for another payment (#{payment.id})",
            reference=reference,
        )
    return payment


def _find_manual(session: Session, txn_id: str) -> Payment | None:
    return session.exec(
        select(Payment).where(Payment.provider == "manual").where(Payment.provider_txn_id == txn_id)
    ).first()
