"""Finding accounts: lists by status, plan and lateness; a search by whatever a care agent
has (a name, a phone in any local form, an account number with spaces, a box's serial);
and an account's recent activity. Shared by the CLI and the operator API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from paygo.accounts import normalise_number
from paygo.errors import InvalidInput
from paygo.models import (
    Account,
    AccountStatus,
    Customer,
    Device,
    OutboundMessage,
    Payment,
    PaymentPlan,
    Ticket,
    Token,
)
from paygo.pages import Page, page
from paygo.phones import try_normalise

#: The longest search text: a name or a phone, never a paragraph.
SEARCH_LENGTH = 120


@dataclass(frozen=True)
class AccountRow:
    """An account as a list shows it: who, which box, which plan, how it stands."""

    id: int
    number: str
    status: str
    customer: str
    phone: str
    plan: str
    currency: str
    device: str
    credit_until: datetime | None
    total_paid: int


#: The columns of an AccountRow, in its order.
_COLUMNS: list[Any] = [
    Account.id,
    Account.number,
    Account.status,
    Customer.name,
    Customer.phone,
    PaymentPlan.name,
    PaymentPlan.currency,
    Device.serial,
    Account.credit_until,
    Account.total_paid,
]


def _rows() -> Any:
    return (
        sa_select(*_COLUMNS)
        .join(Customer, col(Customer.id) == col(Account.customer_id))
        .join(PaymentPlan, col(PaymentPlan.id) == col(Account.plan_id))
        .join(Device, col(Device.id) == col(Account.device_id))
    )


def _page(session: Session, query: Any, listing: str, limit: int, cursor: str | None) -> Page[Any]:
    found: Page[Any] = page(
        session=session,
        query=query,
        listing=listing,
        order=[col(Account.id)],
        key=lambda row: (row[0],),
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[AccountRow(*row) for row in found.items], next=found.next)


def list_accounts(
    *,
    session: Session,
    now: datetime,
    status: str | None = None,
    plan_id: int | None = None,
    late_days: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[AccountRow]:
    """Accounts, newest first; `late_days`: active ones whose credit ran out that long ago."""
    query = _rows()
    if status is not None:
        query = query.where(col(Account.status) == status)
    if plan_id is not None:
        query = query.where(col(Account.plan_id) == plan_id)
    if late_days is not None:
        if late_days < 0:
            raise InvalidInput("--late-days cannot be negative", late_days=late_days)
        query = query.where(col(Account.status) == AccountStatus.ACTIVE).where(
            col(Account.credit_until) <= now - timedelta(days=late_days)
        )
    return _page(session, query, "accounts", limit, cursor)


def search_accounts(
    *,
    session: Session,
    text: str,
    default_country: str,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[AccountRow]:
    """Accounts whose customer's name holds `text`, or whose phone, number or box it is."""
    wanted = " ".join(text.split())
    if not wanted:
        raise InvalidInput("say what to search for: a name, a phone, an account or a serial")
    if len(wanted) > SEARCH_LENGTH:
        raise InvalidInput(f"search for at most {SEARCH_LENGTH} characters")
    query = _rows().where(or_(*_matches(wanted, default_country)))
    return _page(session, query, "search", limit, cursor)


def _matches(wanted: str, default_country: str) -> list[ColumnElement[bool]]:
    escaped = wanted.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found: list[ColumnElement[bool]] = [
        func.lower(col(Customer.name)).like(f"%{escaped}%", escape="\\"),
        func.upper(col(Device.serial)) == wanted.upper(),
    ]
    number = normalise_number(wanted)
    if number.isascii() and number.isdigit():
        found.append(col(Account.number) == number)
    phone = try_normalise(wanted, default_country)
    found.append(col(Customer.phone) == phone if phone else false())
    return found


@dataclass(frozen=True)
class Activity:
    """What happened on an account lately, newest first."""

    payments: list[Payment]
    tokens: list[Token]
    messages: list[OutboundMessage]
    tickets: list[Ticket]


def recent_activity(*, session: Session, account: Account, limit: int = 5) -> Activity:
    """An account's last payments, codes, messages and tickets."""

    def newest(model: Any, *where: Any) -> list[Any]:
        query = select(model).where(*where).order_by(model.id.desc()).limit(limit)
        return list(session.exec(query))

    return Activity(
        payments=newest(Payment, col(Payment.account_id) == account.id),
        tokens=newest(
            Token, col(Token.account_id) == account.id, col(Token.device_id) == account.device_id
        ),
        messages=newest(OutboundMessage, col(OutboundMessage.account_id) == account.id),
        tickets=newest(Ticket, col(Ticket.account_id) == account.id),
    )
