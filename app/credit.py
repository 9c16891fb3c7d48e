"""Credit rules: what a payment buys under a plan, and the account's credit state.

`quote` has no side effects, so USSD can tell a customer what an amount buys before they
pay; `app.tokens.issue.credit_payment` applies the same quote to the account.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from app.models import Account, AccountStatus, Device, PaymentPlan, Token
from app.money import format_minor

#: Largest number of days one standard (9-digit) code can carry.
MAX_DAYS_PER_CODE = 995


@dataclass(frozen=True)
class Quote:
    """What one payment does to an account; nothing is changed by computing it."""

    amount: int
    currency: str
    counted: int            # part of the amount that counts towards the plan
    overpayment: int        # beyond the plan's total: owed back to the customer
    deposit_part: int       # part that went to the deposit
    deposit_left: int       # deposit still to pay after this payment
    activates: bool         # this payment completes the deposit
    below_minimum: bool     # too small to buy time: kept as remainder
    steps: int              # time bought, in the device's time-divider steps
    days: float             # the same in days
    remainder_after: int    # money kept for the next payment
    pays_off: bool          # the plan's total is reached: the box unlocks for good
    credit_until: datetime | None  # after this payment
    minimum: int            # the plan's minimum payment (for the customer's reply)

    @property
    def buys_time(self) -> bool:
        return self.steps > 0


def unit(plan: PaymentPlan, divider: int) -> tuple[int, int]:
    """(steps per unit, price per unit): divider steps when the price divides exactly."""
    if divider > 1 and plan.price_per_day % divider == 0:
        return 1, plan.price_per_day // divider
    return divider, plan.price_per_day


def quote(*, plan: PaymentPlan, account: Account, amount: int, now: datetime,
          divider: int = 1) -> Quote:
    """Answer "what does this payment buy?" for an account, without changing anything."""
    if account.status == AccountStatus.PAID_OFF:
        return nothing(plan, account, amount, overpayment=amount)
    counted, overpayment = _split_at_total(plan, account, amount)
    paid_after = account.total_paid + counted
    deposit_before = min(account.total_paid, plan.deposit)
    deposit_part = min(counted, plan.deposit - deposit_before)
    deposit_left = max(0, plan.deposit - paid_after)
    activates = account.status == AccountStatus.PENDING_DEPOSIT and deposit_left == 0
    pays_off = plan.total_price is not None and paid_after >= plan.total_price
    spendable = account.remainder + counted - deposit_part
    finishing = plan.total_price is not None and plan.total_price - account.total_paid \
        <= plan.min_payment
    below_minimum = (not activates and not pays_off and deposit_part == 0
                     and amount < plan.min_payment and not finishing)
    if deposit_left > 0 or below_minimum or pays_off:
        steps, remainder = 0, 0 if pays_off else spendable
    else:
        per_unit_steps, unit_price = unit(plan, divider)
        units = spendable // unit_price
        steps, remainder = units * per_unit_steps, spendable - units * unit_price
    if activates:
        steps += plan.deposit_days * divider
    days = steps / divider
    until = account.credit_until
    if steps:
        start = max(now, until) if until else now
        until = start + timedelta(days=days)
    return Quote(amount=amount, currency=plan.currency, counted=counted,
                 overpayment=overpayment, deposit_part=deposit_part, deposit_left=deposit_left,
                 activates=activates, below_minimum=below_minimum, steps=steps, days=days,
                 remainder_after=remainder, pays_off=pays_off, credit_until=until,
                 minimum=plan.min_payment)


def _split_at_total(plan: PaymentPlan, account: Account, amount: int) -> tuple[int, int]:
    if plan.total_price is None:
        return amount, 0
    payable = max(0, plan.total_price - account.total_paid)
    return min(amount, payable), max(0, amount - payable)


def nothing(plan: PaymentPlan, account: Account, amount: int, *, overpayment: int) -> Quote:
    return Quote(amount=amount, currency=plan.currency, counted=0, overpayment=overpayment,
                 deposit_part=0, deposit_left=0, activates=False, below_minimum=False, steps=0,
                 days=0.0, remainder_after=account.remainder, pays_off=False,
                 credit_until=account.credit_until, minimum=plan.min_payment)


def split_steps(steps: int, *, max_per_code: int) -> list[int]:
    """Split time into code-sized pieces (995 days a standard code)."""
    pieces = []
    while steps > 0:
        pieces.append(min(steps, max_per_code))
        steps -= pieces[-1]
    return pieces


def days_left(account: Account, now: datetime) -> float:
    """Days of credit remaining (0 when expired)."""
    if account.credit_until is None or account.credit_until <= now:
        return 0.0
    return (account.credit_until - now).total_seconds() / 86400


def next_payment_due(plan: PaymentPlan, account: Account) -> datetime | None:
    """When the customer should pay next to keep the light on (the credit-until date)."""
    if account.status == AccountStatus.PAID_OFF:
        return None
    return account.credit_until


def account_view(*, session: Session, account: Account, now: datetime,
                 drift_warning: int = 40) -> dict[str, Any]:
    """The credit state an operator or a customer sees, as plain data."""
    plan = session.get(PaymentPlan, account.plan_id)
    device = session.get(Device, account.device_id)
    assert plan is not None and device is not None
    left_to_pay = None if plan.total_price is None else max(0, plan.total_price
                                                             - account.total_paid)
    unentered = max(0, device.token_count - device.entered_count)
    tokens = session.exec(select(func.count()).select_from(Token)
                          .where(col(Token.device_id) == device.id)).one()
    view: dict[str, Any] = {
        "account_number": account.number, "status": account.status,
        "device": device.serial, "device_status": device.status, "plan": plan.name,
        "currency": plan.currency, "credit_until": account.credit_until,
        "days_left": math.floor(days_left(account, now) * 10) / 10,
        "total_paid": account.total_paid, "left_to_pay": left_to_pay,
        "remainder": account.remainder, "overpayment": account.overpayment,
        "deposit_left": max(0, plan.deposit - account.total_paid),
        "next_payment_due": next_payment_due(plan, account),
        "token_count": device.token_count, "entered_count": device.entered_count,
        "tokens_issued": tokens, "warnings": [],
    }
    if unentered >= drift_warning:
        view["warnings"].append(
            f"the server is {unentered} counts ahead of the last count known on the box "
            f"(a box rejects codes more than 64 ahead): confirm the box's count, or issue a "
            f"SET_TIME or COUNTER_SYNC token (paygo tokens issue {account.number} --type set)")
    return view


def describe(view: dict[str, Any]) -> list[str]:
    """Human lines for an account view."""
    cur = view["currency"]
    lines = [
        f"account {view['account_number']} ({view['status']}), device {view['device']}, "
        f"plan {view['plan']}",
        f"credit until: {view['credit_until'] or '-'} ({view['days_left']} days left)",
        f"paid: {format_minor(view['total_paid'], cur)}; left to pay: "
        + ("pay-per-use" if view["left_to_pay"] is None
           else format_minor(view["left_to_pay"], cur)),
        f"remainder: {format_minor(view['remainder'], cur)}; overpayment: "
        f"{format_minor(view['overpayment'], cur)}",
        f"device count {view['token_count']} (last known on the box: {view['entered_count']})",
    ]
    return lines + [f"warning: {w}" for w in view["warnings"]]


def quote_dict(q: Quote) -> dict[str, Any]:
    """A quote as plain data."""
    return asdict(q)
