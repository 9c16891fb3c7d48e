"""Operator actions on a box: tokens with a reason, and count confirmation.

Each is audited with who did it and why. An operator's code changes the account to match
what the box will do with it, and goes to the customer by SMS too: the caller sends
`Issued.outgoing` once its transaction commits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from paygo import audit
from paygo.crypto import KeyBox
from paygo.errors import Conflict, InvalidInput, TokenError
from paygo.ledger.crediting import box_problem
from paygo.ledger.locks import Held
from paygo.messaging.outbox import Outgoing, outgoing, queue_message
from paygo.models import (
    Account,
    AccountStatus,
    Customer,
    Device,
    DeviceStatus,
    OutboundMessage,
    PaymentPlan,
    Token,
    row_id,
)
from paygo.texts.catalogue import Catalogue
from paygo.texts.receipts import render_token_notice
from paygo.tokens.codec import TokenKind
from paygo.tokens.issue import issue_token, lock_device

#: The server's remaining days are rounded up to the next step for a SET_TIME code, but a
#: few seconds past a whole step (the clock moved while the operator typed) do not count.
SET_TIME_GRACE = timedelta(minutes=1)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """What an operator token did: the code(s), and the SMS to send once committed."""

    tokens: list[Token]
    outgoing: tuple[Outgoing, ...]


def operator_token(
    *,
    session: Session,
    keys: KeyBox,
    texts: Catalogue,
    held: Held,
    kind: TokenKind,
    reason: str,
    actor: str,
    now: datetime,
    days: int | None = None,
) -> Issued:
    """Issue a token an operator asked for, adjust the account to match, and audit it.

    `held`: the account and its box, locked (`hold_account`). SET_TIME without `days`
    carries the server's view of the days left (rounded up to the device's next
    time-divider step).
    """
    if not reason.strip():
        raise InvalidInput("say why: --reason is required for an operator token")
    account, device = held.account, held.device
    problem = box_problem(session=session, account=account, device=device)
    if problem:
        raise Conflict(f"no code can be issued: {problem}", account=account.number)
    steps = _operator_steps(account, device, kind, days, now)
    tokens = issue_token(
        session=session,
        keys=keys,
        device=device,
        kind=kind,
        steps=steps,
        reason=reason,
        account=account,
        actor=actor,
    )
    _adjust_account(session, account, device, kind, steps, now)
    session.add_all([account, device])
    audit.record(
        session=session,
        actor=actor,
        action=f"token.{kind.value}",
        target_type="account",
        target_id=account.number,
        reason=reason,
        days=steps / device.time_divider,
        counts=[t.count for t in tokens],
    )
    notice = _notify(session, account, tokens, texts)
    session.flush()
    return Issued(tokens=tokens, outgoing=(outgoing(notice),) if notice else ())


def _operator_steps(
    account: Account, device: Device, kind: TokenKind, days: int | None, now: datetime
) -> int:
    """The time an operator token carries, in the device's time-divider steps."""
    if kind in (TokenKind.DISABLE_PAYG, TokenKind.COUNTER_SYNC):
        if days is not None:
            raise InvalidInput(f"a {kind.value} token carries no days; leave --days out")
        return 0
    if days is not None and days < 0:
        raise InvalidInput("--days cannot be negative", days=days)
    if kind is TokenKind.SET_TIME:
        return (
            days * device.time_divider if days is not None else server_steps(account, device, now)
        )
    if not days:
        raise InvalidInput("--days (1 or more) is required for an add token")
    if account.status == AccountStatus.PAID_OFF:
        # A box out of PAYG ignores ADD_TIME: the count would be spent for nothing.
        raise Conflict(
            f"account {account.number} is paid off and its box is out of PAYG; "
            f"move it back with --type set first",
            account=account.number,
        )
    return days * device.time_divider


def server_steps(account: Account, device: Device, now: datetime) -> int:
    """The server's remaining credit in time-divider steps, rounded up to a whole step."""
    if account.credit_until is None:
        return 0
    left = max(timedelta(0), account.credit_until - now - SET_TIME_GRACE)
    return math.ceil(left * device.time_divider / _DAY)


def _adjust_account(
    session: Session, account: Account, device: Device, kind: TokenKind, steps: int, now: datetime
) -> None:
    given = _DAY * steps / device.time_divider
    if kind is TokenKind.ADD_TIME:
        start = max(now, account.credit_until) if account.credit_until else now
        account.credit_until = start + given
    elif kind is TokenKind.SET_TIME:
        # Back into PAYG: the box counts down from what the code set.
        account.credit_until = now + given
        if account.status == AccountStatus.PAID_OFF:
            plan = session.get(PaymentPlan, account.plan_id)
            deposit_paid = plan is None or account.total_paid >= plan.deposit
            account.status = AccountStatus.ACTIVE if deposit_paid else AccountStatus.PENDING_DEPOSIT
            account.paid_off_at = None
        if device.status in (DeviceStatus.PAID_OFF, DeviceStatus.ASSIGNED):
            device.status = DeviceStatus.ACTIVE
    elif kind is TokenKind.DISABLE_PAYG:
        # Out of PAYG: the box stays on for good.
        account.status, account.paid_off_at = AccountStatus.PAID_OFF, now
        device.status = DeviceStatus.PAID_OFF
    account.updated_at = device.updated_at = now


def _notify(
    session: Session, account: Account, tokens: list[Token], texts: Catalogue
) -> OutboundMessage | None:
    customer = session.get(Customer, account.customer_id)
    assert customer is not None
    text = render_token_notice(
        language=customer.language, account_number=account.number, tokens=tokens, texts=texts
    )
    return queue_message(
        session=session,
        recipient=customer.phone,
        body=text,
        kind="token",
        dedupe_key=f"token:{row_id(tokens[0].id)}",
        account_id=account.id,
    )


def confirm_entered(
    *, session: Session, account: Account, actor: str, count: int | None = None
) -> Device:
    """Record the count a box is known to have reached (resets the drift warning)."""
    device = lock_device(session=session, device_id=account.device_id)
    count = device.token_count if count is None else count
    if not 0 <= count <= device.token_count:
        raise TokenError(f"count must be between 0 and {device.token_count}", count=count)
    device.entered_count = max(device.entered_count, count)
    session.add(device)
    audit.record(
        session=session,
        actor=actor,
        action="device.count_confirmed",
        target_type="device",
        target_id=device.serial,
        count=count,
        account=account.number,
    )
    return device
