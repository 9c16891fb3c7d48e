"""Payment plans: what a day of light costs and what pays a box off."""

from __future__ import annotations

from sqlmodel import Session, select

from paygo.errors import Conflict, InvalidInput, NotFound
from paygo.models import PaymentPlan
from paygo.money import exponent

#: Amounts and day counts are 32-bit integer columns: refuse what PostgreSQL cannot store.
MAX_INT = 2**31 - 1
NAME_LENGTH = 80


def create_plan(
    *,
    session: Session,
    name: str,
    currency: str,
    price_per_day: int,
    deposit: int = 0,
    deposit_days: int = 0,
    min_payment: int = 0,
    total_price: int | None = None,
    reminder_days_before: int = 2,
) -> PaymentPlan:
    """Create a plan; amounts are minor units."""
    currency = currency.strip().upper()
    exponent(currency)
    name = name.strip()
    if not name or len(name) > NAME_LENGTH:
        raise InvalidInput(f"a plan needs a name of 1 to {NAME_LENGTH} characters")
    if price_per_day <= 0:
        raise InvalidInput("price per day must be positive", price_per_day=price_per_day)
    if min(deposit, deposit_days, min_payment, reminder_days_before) < 0:
        raise InvalidInput(
            "deposit, deposit days, minimum payment and reminder days cannot be negative"
        )
    if (
        max(
            price_per_day,
            deposit,
            deposit_days,
            min_payment,
            reminder_days_before,
            total_price or 0,
        )
        > MAX_INT
    ):
        raise InvalidInput(
            f"an amount or day count is too large (at most {MAX_INT} minor units or days)"
        )
    if total_price is not None and total_price <= 0:
        raise InvalidInput(
            "total price must be positive (omit it for pay-per-use)", total_price=total_price
        )
    if total_price is not None and total_price < deposit:
        raise InvalidInput("total price cannot be below the deposit", total_price=total_price)
    if session.exec(select(PaymentPlan).where(PaymentPlan.name == name)).first():
        raise Conflict(f"a plan named {name!r} exists already", plan=name)
    plan = PaymentPlan(
        name=name,
        currency=currency,
        price_per_day=price_per_day,
        deposit=deposit,
        deposit_days=deposit_days,
        min_payment=min_payment,
        total_price=total_price,
        reminder_days_before=reminder_days_before,
    )
    session.add(plan)
    session.flush()
    return plan


def get_plan(*, session: Session, name: str) -> PaymentPlan:
    """Find a plan by name."""
    plan = session.exec(select(PaymentPlan).where(PaymentPlan.name == name.strip())).first()
    if plan is None:
        raise NotFound(f"no plan named {name!r}", plan=name)
    return plan


def list_plans(*, session: Session) -> list[PaymentPlan]:
    """Every plan, by name."""
    return list(session.exec(select(PaymentPlan).order_by(PaymentPlan.name)))
