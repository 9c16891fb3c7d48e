"""Customer tickets: what a customer reported (by USSD, SMS or to an operator) and its way
to closing, new -> assigned -> in_progress -> resolved -> closed.

Every move is audited with who made it and why; notes live as comments on the ticket.
Shared by the CLI and the operator API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from paygo import audit
from paygo.errors import Conflict, InvalidInput, NotFound
from paygo.models import Account, Customer, Ticket, TicketComment, TicketStatus, row_id
from paygo.pages import Page, page

S = TicketStatus
#: Where a ticket may go from each state (a resolved one reopens to in_progress).
MOVES: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED, S.CLOSED}),
    S.ASSIGNED: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.ASSIGNED, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.IN_PROGRESS, S.CLOSED}),
    S.CLOSED: frozenset(),
}
OPEN = tuple(s.value for s in TicketStatus if s != S.CLOSED)
BODY_LENGTH = 2000
WHO_LENGTH = 80


@dataclass(frozen=True)
class TicketRow:
    """A ticket as a list shows it, with its account and customer."""

    ticket: Ticket
    account_number: str | None
    customer: str | None


@dataclass(frozen=True)
class TicketDetails:
    """A ticket with its account, customer and comments, oldest comment first."""

    row: TicketRow
    comments: list[TicketComment]


def _rows() -> Any:
    return (
        select(Ticket, Account.number, Customer.name)
        .outerjoin(Account, col(Account.id) == col(Ticket.account_id))
        .outerjoin(Customer, col(Customer.id) == col(Ticket.customer_id))
    )


def list_tickets(
    *,
    session: Session,
    status: str | None = None,
    assigned_to: str | None = None,
    account_id: int | None = None,
    include_closed: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[TicketRow]:
    """Tickets newest first: the open ones, or those in `status`."""
    query = _rows()
    if status is not None:
        query = query.where(col(Ticket.status) == _status(status))
    elif not include_closed:
        query = query.where(col(Ticket.status).in_(OPEN))
    if assigned_to is not None:
        query = query.where(col(Ticket.assigned_to) == assigned_to.strip())
    if account_id is not None:
        query = query.where(col(Ticket.account_id) == account_id)
    found: Page[Any] = page(
        session=session,
        query=query,
        listing="tickets",
        order=[col(Ticket.id)],
        key=lambda row: (row[0].id,),
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[TicketRow(*row) for row in found.items], next=found.next)


def _status(status: str) -> str:
    if status not in TicketStatus.__members__.values():
        raise InvalidInput(
            f"status must be one of {', '.join(s.value for s in TicketStatus)}", status=status
        )
    return status


def get_ticket(*, session: Session, ticket_id: int) -> Ticket:
    """Find a ticket by its number."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket #{ticket_id}", ticket=ticket_id)
    return ticket


def ticket_details(*, session: Session, ticket_id: int) -> TicketDetails:
    """A ticket with its account, customer and comments."""
    found = session.exec(_rows().where(col(Ticket.id) == ticket_id)).first()
    if found is None:
        raise NotFound(f"no ticket #{ticket_id}", ticket=ticket_id)
    comments = session.exec(
        select(TicketComment)
        .where(TicketComment.ticket_id == ticket_id)
        .order_by(col(TicketComment.id))
    )
    return TicketDetails(row=TicketRow(*found), comments=list(comments))


def open_ticket(
    *, session: Session, account: Account, body: str, actor: str, now: datetime
) -> Ticket:
    """Open a ticket for an account on a customer's behalf (USSD and SMS open their own)."""
    customer = session.get(Customer, account.customer_id)
    assert customer is not None
    ticket = Ticket(
        customer_id=customer.id,
        account_id=account.id,
        phone=customer.phone,
        channel="operator",
        body=_text(body, "the problem"),
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    _audit(session, ticket, actor, "ticket.open")
    return ticket


def move_ticket(
    *,
    session: Session,
    ticket: Ticket,
    status: str,
    actor: str,
    now: datetime,
    note: str | None = None,
    assigned_to: str | None = None,
) -> Ticket:
    """Move a ticket to `status` (with a note, kept as a comment). Audited."""
    if _status(status) not in MOVES[ticket.status]:
        raise Conflict(
            f"ticket #{ticket.id} is {ticket.status}: it cannot move to {status}",
            ticket=ticket.id,
        )
    if note:
        comment_ticket(session=session, ticket=ticket, author=actor, body=note, now=now)
    before = ticket.status
    ticket.status, ticket.updated_at = status, now
    if assigned_to is not None:
        ticket.assigned_to = _who(assigned_to)
    if status == S.CLOSED:
        ticket.closed_at = now
    session.add(ticket)
    _audit(session, ticket, actor, f"ticket.{status}", was=before, to=ticket.assigned_to, note=note)
    return ticket


def assign_ticket(
    *, session: Session, ticket: Ticket, to: str, actor: str, now: datetime, note: str | None = None
) -> Ticket:
    """Give a ticket to someone (a technician, a care agent)."""
    return move_ticket(
        session=session,
        ticket=ticket,
        status=S.ASSIGNED,
        actor=actor,
        now=now,
        note=note,
        assigned_to=to,
    )


def close_ticket(
    *, session: Session, ticket: Ticket, actor: str, reason: str, now: datetime
) -> Ticket:
    """Close a ticket, saying why."""
    return move_ticket(
        session=session,
        ticket=ticket,
        status=S.CLOSED,
        actor=actor,
        now=now,
        note=_text(reason, "why it is closed"),
    )


def comment_ticket(
    *, session: Session, ticket: Ticket, author: str, body: str, now: datetime
) -> TicketComment:
    """Add a note to a ticket (a closed one takes none)."""
    if ticket.status == S.CLOSED:
        raise Conflict(f"ticket #{ticket.id} is closed", ticket=ticket.id)
    comment = TicketComment(
        ticket_id=row_id(ticket.id),
        author=_who(author),
        body=_text(body, "a comment"),
        created_at=now,
    )
    ticket.updated_at = now
    session.add_all([comment, ticket])
    session.flush()
    return comment


def _text(text: str, what: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput(f"say {what}")
    if len(cleaned) > BODY_LENGTH or "\x00" in cleaned:
        raise InvalidInput(f"{what} must be plain text of at most {BODY_LENGTH} characters")
    return cleaned


def _who(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > WHO_LENGTH:
        raise InvalidInput(f"a name has 1 to {WHO_LENGTH} characters")
    return cleaned


def _audit(session: Session, ticket: Ticket, actor: str, action: str, **detail: Any) -> None:
    audit.record(
        session=session,
        actor=actor,
        action=action,
        target_type="ticket",
        target_id=ticket.id,
        **{k: v for k, v in detail.items() if v is not None},
    )
    session.flush()
