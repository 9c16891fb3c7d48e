"""`paygo customers`: show a customer with their accounts, and correct their details."""

from __future__ import annotations

from typing import Any

import click

from paygo import customers
from paygo.accounts import LANGUAGES
from paygo.cli.context import current_gateway
from paygo.cli.output import emit, handles_errors, json_option, table, utc_option
from paygo.models import Customer


@click.group("customers")
def customers_group() -> None:
    """Show and correct customers."""


def _customer(customer: Customer) -> dict[str, Any]:
    return customer.model_dump(exclude={"phone_digest"})


@customers_group.command("show")
@click.argument("who")
@utc_option
@json_option
@handles_errors
def show(who: str, as_json: bool) -> None:
    """Show the customer with this phone (any local form) or account number."""
    gateway = current_gateway()
    with gateway.db.session() as session:
        found = customers.find_customer(
            session=session, who=who, default_country=gateway.settings.default_country
        )
    c = found.customer
    owned = [{"account_number": a.number, "status": a.status} for a in found.accounts]
    emit(
        as_json,
        {**_customer(c), "accounts": owned},
        f"customer #{c.id}: {c.name}, {c.phone}, language {c.language}, zone {c.timezone}",
        *table(["ACCOUNT", "STATUS"], [(a["account_number"], a["status"]) for a in owned]),
    )


@customers_group.command("update")
@click.argument("who")
@click.option("--name", default=None)
@click.option("--phone", default=None, help="In any local form; stored as +254...")
@click.option("--language", type=click.Choice(LANGUAGES), default=None)
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--actor", default="cli", show_default=True, help="Who is changing it.")
@json_option
@handles_errors
def update(
    who: str,
    name: str | None,
    phone: str | None,
    language: str | None,
    reason: str,
    actor: str,
    as_json: bool,
) -> None:
    """Correct the name, phone or language of the customer with this phone or account."""
    gateway = current_gateway()
    country = gateway.settings.default_country
    with gateway.db.transaction() as session:
        found = customers.find_customer(session=session, who=who, default_country=country)
        changed = customers.update_customer(
            session=session,
            customer=found.customer,
            actor=actor,
            reason=reason,
            default_country=country,
            name=name,
            phone=phone,
            language=language,
        )
        data = _customer(found.customer)
    emit(
        as_json,
        {**data, "changed": {k: {"from": a, "to": b} for k, (a, b) in changed.items()}},
        *(f"{field}: {old} -> {new}" for field, (old, new) in changed.items()),
    )
