"""Credit rules: what a payment buys under a plan, and the account's credit state.

Pure functions of a plan and an account: nothing here reads or writes the database.
`quote` tells USSD what an amount buys before the customer pays, and
`paygo.ledger.crediting.credit_payment` applies the same quote to the account.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from paygo.models import Account, AccountStatus, PaymentPlan

_DAY = timedelta(days=1)
_TENTH_OF_A_DAY = timedelta(days=1) / 10


@dataclass(frozen=True)
class Quote:
    """What one payment does to an account; nothing is changed by computing it."""

    amount: int
    currency: str
    counted: int  # part of the amount that counts towards the plan
    overpayment: int  # beyond the plan's total: owed back to the customer
    deposit_part: int  # part that went to the deposit
    deposit_left: int  # deposit still to pay after this payment
    activates: bool  # this payment activates the account (deposit complete)
    below_minimum: bool  # too small to buy time: kept as remainder
    steps: int  # time bought, in the device's time-divider steps
    days: float  # the same in days
    remainder_after: int  # money kept for the next payment
    pays_off: bool  # the plan's total is reached: the box unlocks for good
    credit_until: datetime | None  # after this payment
    minimum: int  # the plan's minimum payment (for the customer's reply)
    unit_price: int = 0  # what the smallest step of time costs (0: nothing left to buy)

    @property
    def buys_time(self) -> bool:
        return self.steps > 0

    @property
    def short_of_next_step(self) -> int:
        """How much more the kept remainder needs to buy the next step of time."""
        return max(0, self.unit_price - self.remainder_after) if self.unit_price else 0


def unit(plan: PaymentPlan, divider: int) -> tuple[int, int]:
    """(steps per unit, price per unit): the finest step that costs whole minor units.

    With a divider of 4 and a price of 50.00 a day that is one quarter-day step at 12.50; a
    price the divider does not split evenly buys the smallest group of steps it does (a whole
    day at worst), so no fraction of a minor unit is ever rounded away.
    """
    divider = max(1, divider)
    per_unit = divider // math.gcd(plan.price_per_day, divider)
    return per_unit, plan.price_per_day * per_unit // divider


def quote(
    *, plan: PaymentPlan, account: Account, amount: int, now: datetime, divider: int = 1
) -> Quote:
    """Answer "what does this payment buy?" for an account, without changing anything."""
    if account.status == AccountStatus.PAID_OFF:
        return nothing(plan, account, amount, overpayment=amount)
    counted, overpayment = _split_at_total(plan, account, amount)
    paid_after = account.total_paid + counted
    deposit_part = min(counted, max(0, plan.deposit - account.total_paid))
    deposit_left = max(0, plan.deposit - paid_after)
    pays_off = plan.total_price is not None and paid_after >= plan.total_price
    below_minimum = _below_minimum(plan, account, amount, deposit_part, pays_off)
    activates = _activates(plan, account, deposit_left, counted, below_minimum)
    spendable = account.remainder + counted - deposit_part
    per_unit_steps, unit_price = unit(plan, divider)
    if pays_off:
        # The box is unlocked for good: no time to buy, nothing left to keep.
        steps, remainder, unit_price = 0, 0, 0
    elif deposit_left > 0 or below_minimum:
        steps, remainder = 0, spendable
    else:
        units = spendable // unit_price
        steps, remainder = units * per_unit_steps, spendable - units * unit_price
        if activates:
            steps += plan.deposit_days * divider
    until = account.credit_until
    if steps:
        start = max(now, until) if until else now
        until = start + _DAY * steps / divider
    return Quote(
        amount=amount,
        currency=plan.currency,
        counted=counted,
        overpayment=overpayment,
        deposit_part=deposit_part,
        deposit_left=deposit_left,
        activates=activates,
        below_minimum=below_minimum,
        steps=steps,
        days=steps / divider,
        remainder_after=remainder,
        pays_off=pays_off,
        credit_until=until,
        minimum=plan.min_payment,
        unit_price=unit_price,
    )


def _split_at_total(plan: PaymentPlan, account: Account, amount: int) -> tuple[int, int]:
    if plan.total_price is None:
        return amount, 0
    payable = max(0, plan.total_price - account.total_paid)
    return min(amount, payable), max(0, amount - payable)


def _below_minimum(
    plan: PaymentPlan, account: Account, amount: int, deposit_part: int, pays_off: bool
) -> bool:
    # Deposit instalments and the last payment (when less than the minimum is left to
    # pay) are never refused time for being small.
    finishing = (
        plan.total_price is not None and plan.total_price - account.total_paid <= plan.min_payment
    )
    return amount < plan.min_payment and not (deposit_part or pays_off or finishing)


def _activates(
    plan: PaymentPlan, account: Account, deposit_left: int, counted: int, below_minimum: bool
) -> bool:
    if deposit_left > 0:
        return False
    if account.status == AccountStatus.PENDING_DEPOSIT:
        return True
    # A plan without a deposit opens the account ACTIVE: its first real payment activates
    # the box and brings the plan's deposit days, if it has any.
    return (
        plan.deposit == 0
        and account.status == AccountStatus.ACTIVE
        and account.activated_at is None
        and counted > 0
        and not below_minimum
    )


def nothing(plan: PaymentPlan, account: Account, amount: int, *, overpayment: int) -> Quote:
    """A quote that changes nothing on the account (all of it, say, owed back)."""
    return Quote(
        amount=amount,
        currency=plan.currency,
        counted=0,
        overpayment=overpayment,
        deposit_part=0,
        deposit_left=0,
        activates=False,
        below_minimum=False,
        steps=0,
        days=0.0,
        remainder_after=account.remainder,
        pays_off=False,
        credit_until=account.credit_until,
        minimum=plan.min_payment,
    )


def days_left(account: Account, now: datetime) -> float:
    """Days of credit remaining (0 when expired)."""
    if account.credit_until is None or account.credit_until <= now:
        return 0.0
    return (account.credit_until - now) / _DAY


def days_left_shown(account: Account, now: datetime) -> float:
    """Days left rounded down to a tenth, so a customer is never shown time they lack."""
    if account.credit_until is None or account.credit_until <= now:
        return 0.0
    return ((account.credit_until - now) // _TENTH_OF_A_DAY) / 10  # whole tenths, exact


def next_payment_due(plan: PaymentPlan, account: Account) -> datetime | None:
    """When the customer should pay next to keep the light on (the credit-until date)."""
    if account.status == AccountStatus.PAID_OFF:
        return None
    return account.credit_until
