"""Crediting: a payment becomes days on the account, code(s) for its box and a receipt.

All of it is written in the caller's transaction, with the payment, the account and the
device locked, so a payment is credited once whatever runs it again (a retried job, a
duplicate, a re-run after a crash). The receipt may be written already claimed for
sending (`claim`); the caller hands `CreditResult.outgoing` to
`paygo.messaging.sending.send_committed` once its transaction has committed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import true
from sqlmodel import Session, col, select

from paygo import audit, faults
from paygo.credit import Quote, nothing, quote
from paygo.crypto import KeyBox
from paygo.errors import PaymentError
from paygo.ledger.locks import Held, hold_account
from paygo.messaging.outbox import Claimer, Outgoing, outgoing, queue_message
from paygo.models import (
    Account,
    AccountStatus,
    Customer,
    Device,
    DeviceStatus,
    OutboundMessage,
    Payment,
    PaymentPlan,
    PaymentStatus,
    Token,
    row_id,
)
from paygo.texts.catalogue import Catalogue
from paygo.texts.receipts import render_receipt
from paygo.tokens.codec import TokenKind
from paygo.tokens.issue import issue_token


@dataclass(frozen=True)
class CreditResult:
    """What crediting one payment did: the quote applied, the codes, the receipt, and what
    to send once the transaction commits (nothing when it was credited before)."""

    payment_id: int
    account_number: str
    quote: Quote
    tokens: list[Token]
    message_id: int | None
    already_credited: bool = False
    outgoing: tuple[Outgoing, ...] = ()


def credit_payment(
    *,
    session: Session,
    keys: KeyBox,
    texts: Catalogue,
    payment: Payment,
    account_id: int,
    rule: str,
    now: datetime,
    actor: str = "system",
    claim: Claimer | None = None,
) -> CreditResult:
    """Credit a payment to an account: days, token(s), receipt and audit in one transaction.

    `payment` is locked by the caller (reconcile's claim, `lock_payment`, or inserted in
    this transaction). Running it again for a payment changes nothing and returns what
    was done. The receipt is worded from `texts`; with `claim` it is written already
    claimed for the caller to send.
    """
    if payment.status == PaymentStatus.CREDITED:
        return _previous_result(session, payment)
    if payment.status not in (PaymentStatus.RECEIVED, PaymentStatus.UNMATCHED):
        raise PaymentError(
            f"payment #{payment.id} is {payment.status}; it cannot be credited",
            payment_id=payment.id,
        )
    held = hold_account(session=session, account_id=account_id)
    remainder_before = held.account.remainder
    result = _credit(session, keys, texts, payment, held, rule, now, actor, claim)
    q = result.quote
    audit.record(
        session=session,
        actor=actor,
        action="payment.credited",
        target_type="payment",
        target_id=payment.id,
        account=result.account_number,
        rule=rule,
        amount=q.amount,
        counted=q.counted,
        overpayment=q.overpayment,
        steps=q.steps,
        remainder_before=remainder_before,
        remainder_after=q.remainder_after,
        activates=q.activates,
        pays_off=q.pays_off,
    )
    return result


def _credit(
    session: Session,
    keys: KeyBox,
    texts: Catalogue,
    payment: Payment,
    held: Held,
    rule: str,
    now: datetime,
    actor: str,
    claim: Claimer | None,
) -> CreditResult:
    account, device = held.account, held.device
    plan, customer = _plan_and_customer(session, account)
    if payment.currency != plan.currency:
        raise PaymentError(
            f"payment in {payment.currency} for a plan in {plan.currency}", payment_id=payment.id
        )
    if payment.amount <= 0:
        raise PaymentError(f"payment #{payment.id} has no positive amount", payment_id=payment.id)
    problem = box_problem(session=session, account=account, device=device)
    if problem:
        # An operator decides: refund it, or credit it to the account now holding the box.
        raise PaymentError(
            f"{problem}: its payments are not credited automatically",
            payment_id=payment.id,
            account=account.number,
        )
    q = quote(
        plan=plan, account=account, amount=payment.amount, now=now, divider=device.time_divider
    )
    _apply_quote(account, device, q, now)
    faults.point("after_credit")
    tokens = _tokens_for_quote(session, keys, held, payment, q, actor)
    faults.point("after_token")
    payment.status, payment.account_id = PaymentStatus.CREDITED, account.id
    payment.match_rule, payment.credited_at = rule, now
    session.add_all([payment, account, device])
    body = render_receipt(
        language=customer.language,
        account_number=account.number,
        quote=q,
        tokens=tokens,
        timezone=customer.timezone,
        texts=texts,
    )
    receipt = queue_message(
        session=session,
        recipient=customer.phone,
        body=body,
        kind="receipt",
        dedupe_key=f"payment:{payment.id}",
        account_id=account.id,
        payment_id=payment.id,
        claim=claim,
    )
    session.flush()
    faults.point("after_message")
    return CreditResult(
        payment_id=row_id(payment.id),
        account_number=account.number,
        quote=q,
        tokens=tokens,
        message_id=receipt.id if receipt else None,
        outgoing=(outgoing(receipt),) if receipt else (),
    )


def box_problem(*, session: Session, account: Account, device: Device) -> str | None:
    """Why codes for this account must not go to its box (None when they may)."""
    if account.status in (AccountStatus.REPOSSESSED, AccountStatus.CLOSED):
        return f"account {account.number} is {account.status}"
    if device.status in (DeviceStatus.REPOSSESSED, DeviceStatus.IN_STOCK):
        return f"its box {device.serial} is {device.status}"
    newer = session.exec(
        select(Account.number)
        .where(Account.device_id == device.id)
        .where(col(Account.id) > account.id)
    ).first()
    if newer is not None:
        return f"its box {device.serial} now belongs to account {newer}"
    return None


def tokens_for_payment(*, session: Session, payment_id: int) -> list[Token]:
    """The tokens a payment produced, in count order."""
    return list(
        session.exec(select(Token).where(Token.payment_id == payment_id).order_by(col(Token.count)))
    )


def _plan_and_customer(session: Session, account: Account) -> tuple[PaymentPlan, Customer]:
    """An account's plan and customer, both read in one round trip."""
    found = session.exec(
        select(PaymentPlan, Customer)
        .join(Customer, true())
        .where(PaymentPlan.id == account.plan_id)
        .where(Customer.id == account.customer_id)
    ).one()
    return found[0], found[1]


def _previous_result(session: Session, payment: Payment) -> CreditResult:
    account = session.get(Account, payment.account_id)
    plan = session.get(PaymentPlan, account.plan_id) if account else None
    device = session.get(Device, account.device_id) if account else None
    assert account is not None and plan is not None and device is not None
    message = session.exec(
        select(OutboundMessage).where(OutboundMessage.dedupe_key == f"payment:{payment.id}")
    ).first()
    tokens = tokens_for_payment(session=session, payment_id=row_id(payment.id))
    # What the payment gave, read back from its codes (the account has moved on since).
    steps = sum(t.value_raw for t in tokens if t.type in (TokenKind.ADD_TIME, TokenKind.SET_TIME))
    previous = replace(
        nothing(plan, account, payment.amount, overpayment=0),
        steps=steps,
        days=steps / device.time_divider,
        pays_off=any(t.type == TokenKind.DISABLE_PAYG for t in tokens),
    )
    return CreditResult(
        payment_id=row_id(payment.id),
        account_number=account.number,
        quote=previous,
        message_id=message.id if message else None,
        tokens=tokens,
        already_credited=True,
    )


def _apply_quote(account: Account, device: Device, q: Quote, now: datetime) -> None:
    account.total_paid += q.counted
    account.overpayment += q.overpayment
    account.remainder = q.remainder_after
    account.credit_until = q.credit_until
    if (q.steps or q.activates) and account.activated_at is None:
        account.activated_at = now
    if q.activates or (q.steps and account.status == AccountStatus.ACTIVE):
        account.status = AccountStatus.ACTIVE
        device.status = DeviceStatus.ACTIVE
    if q.pays_off:
        account.status, account.paid_off_at = AccountStatus.PAID_OFF, now
        device.status = DeviceStatus.PAID_OFF
    account.updated_at = device.updated_at = now


def _tokens_for_quote(
    session: Session, keys: KeyBox, held: Held, payment: Payment, q: Quote, actor: str
) -> list[Token]:
    if not (q.pays_off or q.steps):
        return []
    return issue_token(
        session=session,
        keys=keys,
        device=held.device,
        kind=TokenKind.DISABLE_PAYG if q.pays_off else TokenKind.ADD_TIME,
        steps=0 if q.pays_off else q.steps,
        reason="paid off" if q.pays_off else "payment",
        account=held.account,
        payment=payment,
        actor=actor,
    )
