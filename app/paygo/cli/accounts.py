"""`paygo accounts`: open and inspect customer accounts."""

from __future__ import annotations

import click

from paygo import accounts, plans
from paygo.cli import views
from paygo.cli.context import current_gateway
from paygo.cli.output import emit, handles_errors, json_option
from paygo.models import utcnow


@click.group("accounts")
def accounts_group() -> None:
    """Open and show customer accounts."""


@accounts_group.command("create")
@click.option("--name", required=True)
@click.option("--phone", required=True)
@click.option("--device", "serial", required=True, help="Serial number of a device in stock.")
@click.option("--plan", "plan_name", required=True)
@click.option("--language", type=click.Choice(accounts.LANGUAGES), default="en", show_default=True)
@json_option
@handles_errors
def create(
    name: str, phone: str, serial: str, plan_name: str, language: str, as_json: bool
) -> None:
    """Open an account; prints the account number last."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        plan = plans.get_plan(session=session, name=plan_name)
        account = accounts.create_account(
            session=session,
            name=name,
            phone=phone,
            serial=serial,
            plan=plan,
            language=language,
            default_country=gateway.settings.default_country,
        )
        number = account.number
    emit(as_json, {"account_number": number}, f"account for {name} on {serial}:", number)


@accounts_group.command("show")
@click.argument("number")
@json_option
@handles_errors
def show(number: str, as_json: bool) -> None:
    """Show an account's credit state: credit-until, days left, paid, left to pay."""
    gateway = current_gateway()
    with gateway.db.session() as session:
        account = accounts.get_account(session=session, number=number)
        view = views.account_view(
            session=session,
            account=account,
            now=utcnow(),
            drift_warning=gateway.settings.token_drift_warning,
        )
    emit(as_json, view, *views.describe(view))


commands = [accounts_group]
