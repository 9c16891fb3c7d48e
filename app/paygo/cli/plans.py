"""`paygo plans`: payment plans."""

from __future__ import annotations

import click

from paygo import plans
from paygo.cli.context import current_gateway
from paygo.cli.output import (
    emit,
    emit_page,
    handles_errors,
    json_option,
    page_options,
    table,
    utc_option,
)
from paygo.models import PaymentPlan, utcnow
from paygo.money import format_minor, to_minor


def plan_dict(plan: PaymentPlan) -> dict[str, object]:
    return plan.model_dump(exclude={"created_at"})


@click.group("plans")
def plans_group() -> None:
    """Create, list, update and retire payment plans."""


@plans_group.command("create")
@click.option("--name", required=True)
@click.option("--currency", required=True, help="ISO 4217 code, e.g. KES.")
@click.option("--price-per-day", required=True, help="Major units, e.g. 50.")
@click.option("--deposit", default="0", show_default=True)
@click.option("--deposit-days", default=0, type=int, show_default=True)
@click.option("--min-payment", default="0", show_default=True)
@click.option("--total-price", default=None, help="Omit for pay-per-use (never paid off).")
@click.option("--reminder-days", default=2, type=int, show_default=True)
@json_option
@handles_errors
def create(
    name: str,
    currency: str,
    price_per_day: str,
    deposit: str,
    deposit_days: int,
    min_payment: str,
    total_price: str | None,
    reminder_days: int,
    as_json: bool,
) -> None:
    """Create a payment plan (amounts in major units as a person types them)."""
    currency = currency.upper()
    with current_gateway().db.transaction() as session:
        plan = plans.create_plan(
            session=session,
            name=name,
            currency=currency,
            price_per_day=to_minor(price_per_day, currency),
            deposit=to_minor(deposit, currency),
            deposit_days=deposit_days,
            min_payment=to_minor(min_payment, currency),
            total_price=None if total_price is None else to_minor(total_price, currency),
            reminder_days_before=reminder_days,
        )
        data = plan_dict(plan)
    emit(as_json, data, f"plan {name}: {format_minor(plan.price_per_day, currency)} a day")


@plans_group.command("list")
@click.option("--active", is_flag=True, help="Leave the retired plans out.")
@page_options
@utc_option
@json_option
@handles_errors
def list_(active: bool, limit: int, cursor: str | None, as_json: bool) -> None:
    """List payment plans: price a day, deposit, minimum payment and total."""
    with current_gateway().db.session() as session:
        found = plans.list_plans(
            session=session, include_retired=not active, limit=limit, cursor=cursor
        )
    lines = table(
        ["ID", "NAME", "PER DAY", "DEPOSIT", "DEPOSIT DAYS", "MINIMUM", "TOTAL", "RETIRED"],
        [
            (
                p.id,
                p.name,
                format_minor(p.price_per_day, p.currency),
                format_minor(p.deposit, p.currency),
                p.deposit_days,
                format_minor(p.min_payment, p.currency),
                "pay-per-use" if p.total_price is None else format_minor(p.total_price, p.currency),
                p.retired_at,
            )
            for p in found.items
        ],
    )
    rows = [plan_dict(p) for p in found.items]
    emit_page(as_json, "plans", rows, found.next, lines, "no plans")


def _minor(value: str | None, currency: str) -> int | None:
    return None if value is None else to_minor(value, currency)


@plans_group.command("update")
@click.argument("plan_ref", metavar="PLAN")
@click.option("--name", default=None)
@click.option("--price-per-day", default=None, help="Major units, e.g. 50.")
@click.option("--deposit", default=None)
@click.option("--deposit-days", type=click.IntRange(min=0), default=None)
@click.option("--min-payment", default=None)
@click.option("--total-price", default=None)
@click.option("--reminder-days", type=click.IntRange(min=0), default=None)
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--actor", default="cli", show_default=True)
@json_option
@handles_errors
def update(
    plan_ref: str,
    name: str | None,
    price_per_day: str | None,
    deposit: str | None,
    deposit_days: int | None,
    min_payment: str | None,
    total_price: str | None,
    reminder_days: int | None,
    reason: str,
    actor: str,
    as_json: bool,
) -> None:
    """Change a plan's terms (PLAN: its id or name); the accounts on it follow them."""
    with current_gateway().db.transaction() as session:
        plan = plans.find_plan(session=session, ref=plan_ref)
        cur = plan.currency
        wanted = {
            "name": name,
            "price_per_day": _minor(price_per_day, cur),
            "deposit": _minor(deposit, cur),
            "deposit_days": deposit_days,
            "min_payment": _minor(min_payment, cur),
            "total_price": _minor(total_price, cur),
            "reminder_days_before": reminder_days,
        }
        changed = plans.update_plan(
            session=session,
            plan=plan,
            actor=actor,
            reason=reason,
            **{k: v for k, v in wanted.items() if v is not None},
        )
        data = plan_dict(plan)
    emit(
        as_json,
        {**data, "changed": {k: {"from": a, "to": b} for k, (a, b) in changed.items()}},
        *(f"{field}: {old} -> {new}" for field, (old, new) in changed.items()),
    )


@plans_group.command("retire")
@click.argument("plan_ref", metavar="PLAN")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--actor", default="cli", show_default=True)
@json_option
@handles_errors
def retire(plan_ref: str, reason: str, actor: str, as_json: bool) -> None:
    """Stop opening accounts on a plan; the accounts that have it keep it."""
    with current_gateway().db.transaction() as session:
        plan = plans.find_plan(session=session, ref=plan_ref)
        plans.retire_plan(session=session, plan=plan, actor=actor, reason=reason, now=utcnow())
        data = plan_dict(plan)
    emit(as_json, data, f"plan {data['name']} is retired: no new account is opened on it")
