"""`paygo plans`: payment plans."""

from __future__ import annotations

import click

from paygo import plans
from paygo.cli.context import current_gateway
from paygo.cli.output import emit, handles_errors, json_option
from paygo.models import PaymentPlan
from paygo.money import format_minor, to_minor


def plan_dict(plan: PaymentPlan) -> dict[str, object]:
    return plan.model_dump(exclude={"created_at"})


@click.group("plans")
def plans_group() -> None:
    """Create and list payment plans."""


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
@json_option
@handles_errors
def list_(as_json: bool) -> None:
    """List payment plans."""
    with current_gateway().db.session() as session:
        rows = [plan_dict(p) for p in plans.list_plans(session=session)]
    lines = [
        f"{r['name']}: {format_minor(int(str(r['price_per_day'])), str(r['currency']))} a day"
        for r in rows
    ]
    emit(as_json, {"plans": rows}, *(lines or ["no plans"]))


commands = [plans_group]
