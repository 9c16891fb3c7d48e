"""`paygo tickets`: what customers reported, from USSD, SMS or an operator, to its closing."""

from __future__ import annotations

from typing import Any

import click

from paygo import tickets
from paygo.cli.context import current_gateway
from paygo.cli.output import (
    emit,
    emit_page,
    handles_errors,
    json_option,
    moment,
    page_options,
    short,
    table,
    utc_option,
)
from paygo.models import TicketStatus, utcnow


@click.group("tickets")
def tickets_group() -> None:
    """Customer tickets: list, show, assign, comment, close."""


def _ticket(row: tickets.TicketRow) -> dict[str, Any]:
    return {
        **row.ticket.model_dump(),
        "account_number": row.account_number,
        "customer": row.customer,
    }


@tickets_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in TicketStatus]), default=None)
@click.option("--all", "include_closed", is_flag=True, help="Closed ones too.")
@click.option("--assigned-to", default=None, help="Only those given to this person.")
@click.option("--account", default=None, help="Only this account's.")
@page_options
@utc_option
@json_option
@handles_errors
def list_(
    status: str | None,
    include_closed: bool,
    assigned_to: str | None,
    account: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List tickets, newest first: the open ones unless --status or --all."""
    from paygo.accounts import get_account

    with current_gateway().db.session() as session:
        account_id = get_account(session=session, number=account).id if account else None
        found = tickets.list_tickets(
            session=session,
            status=status,
            assigned_to=assigned_to,
            account_id=account_id,
            include_closed=include_closed,
            limit=limit,
            cursor=cursor,
        )
    lines = table(
        ["ID", "OPENED", "STATUS", "CHANNEL", "ACCOUNT", "CUSTOMER", "ASSIGNED TO", "PROBLEM"],
        [
            (
                r.ticket.id,
                r.ticket.created_at,
                r.ticket.status,
                r.ticket.channel,
                r.account_number,
                r.customer,
                r.ticket.assigned_to,
                short(r.ticket.body),
            )
            for r in found.items
        ],
    )
    emit_page(
        as_json, "tickets", [_ticket(r) for r in found.items], found.next, lines, "no tickets"
    )


@tickets_group.command("show")
@click.argument("ticket_id", type=int)
@utc_option
@json_option
@handles_errors
def show(ticket_id: int, as_json: bool) -> None:
    """Show a ticket with its comments."""
    with current_gateway().db.session() as session:
        found = tickets.ticket_details(session=session, ticket_id=ticket_id)
    t, row = found.row.ticket, found.row
    data = {**_ticket(row), "comments": [c.model_dump() for c in found.comments]}
    emit(
        as_json,
        data,
        f"ticket #{t.id} ({t.status}) from {t.channel}, opened {moment(t.created_at)}",
        f"account {row.account_number or '-'}, {row.customer or '-'}, {t.phone}",
        f"assigned to: {t.assigned_to or '-'}; last change {moment(t.updated_at)}",
        f"problem: {t.body}",
        *(f"{moment(c.created_at)} {c.author}: {c.body}" for c in found.comments),
    )


def _changed(ticket_id: int, change: Any, as_json: bool, text: str) -> None:
    with current_gateway().db.transaction() as session:
        ticket = tickets.get_ticket(session=session, ticket_id=ticket_id)
        change(session, ticket)
        data = ticket.model_dump()
    emit(as_json, data, text.format(**data))


@tickets_group.command("assign")
@click.argument("ticket_id", type=int)
@click.argument("to")
@click.option("--note", default=None, help="Kept as a comment.")
@click.option("--actor", default="cli", show_default=True)
@json_option
@handles_errors
def assign(ticket_id: int, to: str, note: str | None, actor: str, as_json: bool) -> None:
    """Give a ticket to someone (a technician, a care agent)."""
    _changed(
        ticket_id,
        lambda session, ticket: tickets.assign_ticket(
            session=session, ticket=ticket, to=to, actor=actor, now=utcnow(), note=note
        ),
        as_json,
        "ticket #{id} is assigned to {assigned_to}",
    )


@tickets_group.command("comment")
@click.argument("ticket_id", type=int)
@click.argument("text", nargs=-1, required=True)
@click.option("--actor", default="cli", show_default=True, help="Who is writing.")
@json_option
@handles_errors
def comment(ticket_id: int, text: tuple[str, ...], actor: str, as_json: bool) -> None:
    """Add a note to a ticket."""
    _changed(
        ticket_id,
        lambda session, ticket: tickets.comment_ticket(
            session=session, ticket=ticket, author=actor, body=" ".join(text), now=utcnow()
        ),
        as_json,
        "comment added to ticket #{id}",
    )


@tickets_group.command("close")
@click.argument("ticket_id", type=int)
@click.option("--reason", required=True, help="Why it is closed (kept as a comment).")
@click.option("--actor", default="cli", show_default=True)
@json_option
@handles_errors
def close(ticket_id: int, reason: str, actor: str, as_json: bool) -> None:
    """Close a ticket, saying why."""
    _changed(
        ticket_id,
        lambda session, ticket: tickets.close_ticket(
            session=session, ticket=ticket, actor=actor, reason=reason, now=utcnow()
        ),
        as_json,
        "ticket #{id} is closed",
    )
