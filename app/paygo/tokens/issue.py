"""Issuing tokens: the device count advances under a row lock, in the caller's transaction.

Every token is stored (device, count, type, value, code, reason, payment) in the same
transaction that advances the count, so a code is never lost and a count never reused;
the (device_id, count) unique constraint backs this up in the database itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import true
from sqlmodel import Session, col, select

from paygo import faults
from paygo.credit import Quote, nothing, quote
from paygo.crypto import KeyBox
from paygo.db import lock_row
from paygo.errors import PaymentError, TokenError
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
    utcnow,
)
from paygo.tokens import codec
from paygo.tokens.codec import TokenKind
from paygo.tokens.receipts import render_receipt

MAX_STANDARD_DAYS_VALUE = codec.MAX_STANDARD_VALUE


@dataclass(frozen=True)
class Piece:
    """One code's worth of a request: its kind and raw value (days x divider)."""

    kind: TokenKind
    value_raw: int


def lock_device(*, session: Session, device_id: int) -> Device:
    """Load a device with its row locked (PostgreSQL) for the rest of the transaction."""
    device = lock_row(session, Device, device_id)
    if device is None:
        raise TokenError(f"no device #{device_id}", device_id=device_id)
    return device


def device_params(keys: KeyBox, device: Device) -> codec.DeviceCodeParams:
    """The codec's view of a device (decrypts its key; never store the result)."""
    return codec.DeviceCodeParams.from_hex(
        keys.open(device.secret_key_encrypted),
        device.starting_code,
        restricted=device.restricted_digit_mode,
        extended=device.extended_tokens,
    )


def plan_pieces(kind: TokenKind, steps: int, *, extended: bool) -> list[Piece]:
    """Split a request into codes a box accepts (995 days a standard code)."""
    if kind in (TokenKind.DISABLE_PAYG, TokenKind.COUNTER_SYNC):
        return [Piece(kind, 0)]
    if steps < 0:
        raise TokenError("a token cannot carry negative time", steps=steps)
    limit = codec.MAX_EXTENDED_VALUE if extended else codec.MAX_STANDARD_VALUE
    if kind is TokenKind.SET_TIME:
        # SET_TIME is absolute: set the first piece, add the rest on top.
        first = _avoid_reserved(min(steps, limit), extended)
        rest = [Piece(TokenKind.ADD_TIME, v) for v in _chunks(steps - first, limit, extended)]
        return [Piece(kind, first), *rest]
    return [Piece(kind, v) for v in _chunks(steps, limit, extended)] or [Piece(kind, 0)]


def _chunks(steps: int, limit: int, extended: bool) -> list[int]:
    pieces: list[int] = []
    while steps > 0:
        piece = _avoid_reserved(min(steps, limit), extended)
        pieces.append(piece)
        steps -= piece
    return pieces


def _avoid_reserved(value: int, extended: bool) -> int:
    # An extended code carrying 998 or 999 reads as DISABLE_PAYG / COUNTER_SYNC on the box.
    if extended and value in (codec.DISABLE_VALUE, codec.SYNC_VALUE):
        return codec.DISABLE_VALUE - 1
    return value


def issue_token(
    *,
    session: Session,
    keys: KeyBox,
    device_id: int,
    kind: TokenKind,
    steps: int = 0,
    reason: str,
    account: Account | None = None,
    payment: Payment | None = None,
    actor: str = "system",
) -> list[Token]:
    """Generate, store and count the code(s) for one request on a locked device."""
    device = lock_device(session=session, device_id=device_id)
    params = device_params(keys, device)
    tokens = []
    for piece in plan_pieces(kind, steps, extended=device.extended_tokens):
        new_count, code = codec.generate(
            params, kind=piece.kind, value_raw=piece.value_raw, current_count=device.token_count
        )
        token = Token(
            device_id=device_id,
            count=new_count,
            type=piece.kind,
            days=_days(piece, device.time_divider),
            value_raw=_raw(piece),
            code=code,
            reason=reason[:300],
            created_by=actor[:80],
            account_id=account.id if account else None,
            payment_id=payment.id if payment else None,
        )
        device.token_count = new_count
        session.add(token)
        tokens.append(token)
    device.updated_at = utcnow()
    session.add(device)
    session.flush()
    return tokens


def _days(piece: Piece, divider: int) -> int:
    if piece.kind in (TokenKind.DISABLE_PAYG, TokenKind.COUNTER_SYNC):
        return 0
    return piece.value_raw // divider


def _raw(piece: Piece) -> int:
    if piece.kind is TokenKind.DISABLE_PAYG:
        return codec.DISABLE_VALUE
    if piece.kind is TokenKind.COUNTER_SYNC:
        return codec.SYNC_VALUE
    return piece.value_raw


def tokens_for_payment(*, session: Session, payment_id: int) -> list[Token]:
    """The tokens a payment produced, in count order."""
    return list(
        session.exec(select(Token).where(Token.payment_id == payment_id).order_by(col(Token.count)))
    )


def recent_tokens(
    *, session: Session, device_id: int, limit: int = 5, account_id: int | None = None
) -> Sequence[Token]:
    """The newest stored tokens of a device (resending reads these; it never issues).

    With `account_id`, only the codes issued for that account (a box taken back and sold
    again keeps its count, but its new owner never sees the old owner's codes).
    """
    query = select(Token).where(Token.device_id == device_id)
    if account_id is not None:
        query = query.where(Token.account_id == account_id)
    return session.exec(query.order_by(col(Token.count).desc()).limit(limit)).all()


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


def lock_account(*, session: Session, account_id: int) -> Account:
    """Load an account with its row locked for the rest of the transaction."""
    account = lock_row(session, Account, account_id)
    if account is None:
        raise PaymentError(f"no account #{account_id}", account_id=account_id)
    return account


def credit_payment(
    *,
    session: Session,
    keys: KeyBox,
    payment: Payment,
    account: Account,
    rule: str,
    now: datetime,
    actor: str = "system",
    claim: Claimer | None = None,
) -> CreditResult:
    """Credit one payment to an account: days, token(s) and receipt in one transaction.

    Running it again for the same payment changes nothing and returns what was done.
    With `claim` the receipt is written already claimed, for the caller to send itself.
    """
    payment = _lock_payment(session, payment)
    if payment.status == PaymentStatus.CREDITED:
        return _previous_result(session, payment)
    if payment.status not in (PaymentStatus.RECEIVED, PaymentStatus.UNMATCHED):
        raise PaymentError(
            f"payment #{payment.id} is {payment.status}; it cannot be credited",
            payment_id=payment.id,
        )
    account = lock_account(session=session, account_id=_id(account.id))
    plan, customer = _plan_and_customer(session, account)
    if payment.currency != plan.currency:
        raise PaymentError(
            f"payment in {payment.currency} for a plan in {plan.currency}", payment_id=payment.id
        )
    if payment.amount <= 0:
        raise PaymentError(f"payment #{payment.id} has no positive amount", payment_id=payment.id)
    device = lock_device(session=session, device_id=account.device_id)
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
    tokens = _tokens_for_quote(session, keys, account, payment, q, actor)
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
    )
    message = queue_message(
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
        payment_id=_id(payment.id),
        account_number=account.number,
        quote=q,
        tokens=tokens,
        message_id=message.id if message else None,
        outgoing=(outgoing(message),) if message else (),
    )


def _lock_payment(session: Session, payment: Payment) -> Payment:
    locked = lock_row(session, Payment, _id(payment.id))
    if locked is None:
        raise PaymentError(f"no payment #{payment.id}", payment_id=payment.id)
    return locked


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
    tokens = tokens_for_payment(session=session, payment_id=_id(payment.id))
    # What the payment gave, read back from its codes (the account has moved on since).
    steps = sum(t.value_raw for t in tokens if t.type in (TokenKind.ADD_TIME, TokenKind.SET_TIME))
    previous = replace(
        nothing(plan, account, payment.amount, overpayment=0),
        steps=steps,
        days=steps / device.time_divider,
        pays_off=any(t.type == TokenKind.DISABLE_PAYG for t in tokens),
    )
    return CreditResult(
        payment_id=_id(payment.id),
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
    session: Session, keys: KeyBox, account: Account, payment: Payment, q: Quote, actor: str
) -> list[Token]:
    if q.pays_off:
        return issue_token(
            session=session,
            keys=keys,
            device_id=account.device_id,
            kind=TokenKind.DISABLE_PAYG,
            reason="paid off",
            account=account,
            payment=payment,
            actor=actor,
        )
    if q.steps:
        return issue_token(
            session=session,
            keys=keys,
            device_id=account.device_id,
            kind=TokenKind.ADD_TIME,
            steps=q.steps,
            reason="payment",
            account=account,
            payment=payment,
            actor=actor,
        )
    return []


def _id(value: int | None) -> int:
    if value is None:
        raise RuntimeError("row has no id; flush first")
    return value
