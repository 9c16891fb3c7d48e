"""Payment plans: what a day of light costs and what pays a box off.

A plan is found by its id or its name in any case. Changing or retiring one is audited;
a retired plan stays on the accounts that have it, and no new account is opened on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from paygo import audit
from paygo.errors import Conflict, InvalidInput, NotFound
from paygo.models import PaymentPlan
from paygo.money import exponent
from paygo.pages import Page, page

#: Amounts and day counts are 32-bit integer columns: refuse what PostgreSQL cannot store.
MAX_INT = 2**31 - 1
NAME_LENGTH = 80
#: What `update_plan` may change; the currency never (every amount on the accounts is in it).
CHANGEABLE = (
    "name",
    "price_per_day",
    "deposit",
    "deposit_days",
    "min_payment",
    "total_price",
    "reminder_days_before",
)


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
    plan = PaymentPlan(
        name=_name(session, name),
        currency=currency,
        price_per_day=price_per_day,
        deposit=deposit,
        deposit_days=deposit_days,
        min_payment=min_payment,
        total_price=total_price,
        reminder_days_before=reminder_days_before,
    )
    _check_terms(plan)
    session.add(plan)
    session.flush()
    return plan


def _name(session: Session, name: str, *, keep: PaymentPlan | None = None) -> str:
    """A plan's name, stripped, refusing one another plan has in any case."""
    name = name.strip()
    if not name or len(name) > NAME_LENGTH:
        raise InvalidInput(f"a plan needs a name of 1 to {NAME_LENGTH} characters")
    same = select(PaymentPlan.name).where(func.lower(col(PaymentPlan.name)) == name.lower())
    if keep is not None:
        same = same.where(col(PaymentPlan.id) != keep.id)
    if session.exec(same).first() is not None:
        raise Conflict(f"a plan named {name!r} exists already", plan=name)
    return name


def _check_terms(plan: PaymentPlan) -> None:
    """Refuse prices and days that cannot work together."""
    if plan.price_per_day <= 0:
        raise InvalidInput("price per day must be positive", price_per_day=plan.price_per_day)
    amounts = (plan.deposit, plan.deposit_days, plan.min_payment, plan.reminder_days_before)
    if min(amounts) < 0:
        raise InvalidInput(
            "deposit, deposit days, minimum payment and reminder days cannot be negative"
        )
    if max(plan.price_per_day, *amounts, plan.total_price or 0) > MAX_INT:
        raise InvalidInput(
            f"an amount or day count is too large (at most {MAX_INT} minor units or days)"
        )
    if plan.total_price is not None and plan.total_price <= 0:
        raise InvalidInput(
            "total price must be positive (omit it for pay-per-use)", total_price=plan.total_price
        )
    if plan.total_price is not None and plan.total_price < plan.deposit:
        raise InvalidInput("total price cannot be below the deposit", total_price=plan.total_price)


def find_plan(*, session: Session, ref: str) -> PaymentPlan:
    """Find a plan by its id, or by its name in any case."""
    wanted = ref.strip()
    plan = session.get(PaymentPlan, int(wanted)) if wanted.isascii() and wanted.isdigit() else None
    if plan is None:
        plan = session.exec(
            select(PaymentPlan).where(func.lower(col(PaymentPlan.name)) == wanted.lower())
        ).first()
    if plan is None:
        raise NotFound(f"no plan with the id or name {wanted!r}", plan=ref)
    return plan


def list_plans(
    *,
    session: Session,
    include_retired: bool = True,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[PaymentPlan]:
    """Plans by name."""
    query = select(PaymentPlan)
    if not include_retired:
        query = query.where(col(PaymentPlan.retired_at).is_(None))
    return page(
        session=session,
        query=query,
        listing="plans",
        order=[col(PaymentPlan.name)],
        key=lambda plan: (plan.name,),
        limit=limit,
        cursor=cursor,
        descending=False,
    )


def update_plan(
    *, session: Session, plan: PaymentPlan, actor: str, reason: str, **changes: Any
) -> dict[str, tuple[Any, Any]]:
    """Change a plan's terms; return what changed (before, after). Audited."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise InvalidInput(f"a plan's {', '.join(sorted(unknown))} cannot be changed")
    if "name" in changes:
        changes["name"] = _name(session, changes["name"], keep=plan)
    changed = {k: (getattr(plan, k), v) for k, v in changes.items() if getattr(plan, k) != v}
    if not changed:
        raise InvalidInput("nothing to change")
    for field, (_, value) in changed.items():
        setattr(plan, field, value)
    _check_terms(plan)
    _audit(session, plan, actor, "plan.update", reason, changes=changed)
    return changed


def retire_plan(
    *, session: Session, plan: PaymentPlan, actor: str, reason: str, now: datetime
) -> PaymentPlan:
    """Stop opening accounts on a plan (those that have it keep it). Audited."""
    if plan.retired_at is not None:
        raise Conflict(f"plan {plan.name!r} was retired already", plan=plan.name)
    plan.retired_at = now
    _audit(session, plan, actor, "plan.retire", reason)
    return plan


def _audit(
    session: Session, plan: PaymentPlan, actor: str, action: str, reason: str, **detail: Any
) -> None:
    if not reason.strip():
        raise InvalidInput("say why: --reason is required to change a plan")
    session.add(plan)
    audit.record(
        session=session,
        actor=actor,
        action=action,
        target_type="plan",
        target_id=plan.id,
        reason=reason.strip(),
        **detail,
    )
    session.flush()
