"""Operator actions on a box: tokens with a reason, cash payments, count confirmation.

Each is audited with who did it and why, and the code goes to the customer by SMS too.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timedelta

from sqlmodel import Session, select

from app import audit
from app.credit import days_left
from app.crypto import KeyBox
from app.errors import InvalidInput, TokenError
from app.messaging.outbox import queue_message
from app.models import (
    Account,
    AccountStatus,
    Customer,
    Device,
    DeviceStatus,
    Payment,
    PaymentPlan,
    Token,
)
from app.tokens.codec import TokenKind, format_code
from app.tokens.issue import CreditResult, credit_payment, issue_token, lock_account, lock_device

_NOTICE = {
    "en": "Acc {account}: your new code is {codes}. Type it on your solar box keypad.",
    "sw": "Akaunti {account}: tokeni yako mpya ni {codes}. Iandike kwenye kifaa chako.",
    "fr": "Compte {account}: votre nouveau code est {codes}. Tapez-le sur votre boitier.",
}


def operator_token(*, session: Session, keys: KeyBox, account: Account, kind: TokenKind,
                   reason: str, actor: str, now: datetime,
                   days: int | None = None) -> list[Token]:
    """Issue a token an operator asked for, adjust the account to match, and audit it."""
    if not reason.strip():
        raise InvalidInput("say why: --reason is required for an operator token")
    account = lock_account(session=session, account_id=_id(account.id))
    device = lock_device(session=session, device_id=account.device_id)
    if kind is TokenKind.SET_TIME and days is None:
        days = math.ceil(days_left(account, now))  # the server's view of remaining days
    if kind in (TokenKind.ADD_TIME, TokenKind.SET_TIME) and (days is None or days < 0):
        raise InvalidInput(f"--days is required (0 or more) for a {kind.value} token")
    steps = (days or 0) * device.time_divider
    tokens = issue_token(session=session, keys=keys, device_id=_id(device.id), kind=kind,
                         steps=steps, reason=reason, account=account, actor=actor)
    _adjust_account(account, device, kind, days or 0, now)
    session.add_all([account, device])
    audit.record(session=session, actor=actor, action=f"token.{kind.value}",
                 target_type="account", target_id=account.number, reason=reason, days=days,
                 counts=[t.count for t in tokens])
    _notify(session, account, tokens)
    session.flush()
    return tokens


def _adjust_account(account: Account, device: Device, kind: TokenKind, days: int,
                    now: datetime) -> None:
    if kind is TokenKind.ADD_TIME:
        start = max(now, account.credit_until) if account.credit_until else now
        account.credit_until = start + timedelta(days=days)
    elif kind is TokenKind.SET_TIME:
        # Back into PAYG: the box counts down from `days` again.
        account.credit_until = now + timedelta(days=days)
        if account.status == AccountStatus.PAID_OFF:
            account.status, account.paid_off_at = AccountStatus.ACTIVE, None
        if device.status in (DeviceStatus.PAID_OFF, DeviceStatus.ASSIGNED):
            device.status = DeviceStatus.ACTIVE
    elif kind is TokenKind.DISABLE_PAYG:
        # Out of PAYG: the box stays on for good.
        account.status, account.paid_off_at = AccountStatus.PAID_OFF, now
        device.status = DeviceStatus.PAID_OFF
    account.updated_at = device.updated_at = now


def _notify(session: Session, account: Account, tokens: list[Token]) -> None:
    customer = session.get(Customer, account.customer_id)
    assert customer is not None
    text = _NOTICE.get(customer.language, _NOTICE["en"]).format(
        account=account.number, codes=", ".join(format_code(t.code) for t in tokens))
    queue_message(session=session, recipient=customer.phone, body=text, kind="token",
                  dedupe_key=f"token:{tokens[0].id}", account_id=account.id)


def record_manual_payment(*, session: Session, keys: KeyBox, account: Account, amount: int,
                          actor: str, now: datetime,
                          reference: str | None = None) -> CreditResult:
    """Record a cash or manual payment and credit it exactly as mobile money is credited."""
    if amount <= 0:
        raise InvalidInput("the amount must be positive", amount=amount)
    plan = session.get(PaymentPlan, account.plan_id)
    assert plan is not None
    txn_id = (reference or "").strip() or f"manual-{uuid.uuid4().hex}"
    payment = session.exec(select(Payment).where(Payment.provider == "manual")
                           .where(Payment.provider_txn_id == txn_id)).first()
    if payment is None:
        payment = Payment(provider="manual", provider_txn_id=txn_id[:80], amount=amount,
                          currency=plan.currency, reference=reference, paid_at=now,
                          raw=json.dumps({"recorded_by": actor, "reference": reference}))
        session.add(payment)
        session.flush()
        audit.record(session=session, actor=actor, action="payment.record",
                     target_type="account", target_id=account.number, amount=amount,
                     reference=reference, payment_id=payment.id)
    elif payment.account_id not in (None, account.id) or payment.amount != amount:
        raise InvalidInput(f"reference {reference!r} was recorded already for another "
                           f"payment (#{payment.id})", reference=reference)
    return credit_payment(session=session, keys=keys, payment=payment, account=account,
                          rule="manual", now=now, actor=actor)


def confirm_entered(*, session: Session, account: Account, actor: str,
                    count: int | None = None) -> Device:
    """Record the count a box is known to have reached (resets the drift warning)."""
    device = lock_device(session=session, device_id=account.device_id)
    count = device.token_count if count is None else count
    if not 0 <= count <= device.token_count:
        raise TokenError(f"count must be between 0 and {device.token_count}", count=count)
    device.entered_count = max(device.entered_count, count)
    session.add(device)
    audit.record(session=session, actor=actor, action="device.count_confirmed",
                 target_type="device", target_id=device.serial, count=count)
    return device


def _id(value: int | None) -> int:
    if value is None:
        raise RuntimeError("row has no id; flush first")
    return value
