"""Customers: finding one by an account number or a phone, and correcting their details.

Every correction is audited with who made it, what changed (before and after) and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from paygo import audit
from paygo.accounts import LANGUAGES, get_account, normalise_number
from paygo.errors import Conflict, InvalidInput, NotFound
from paygo.models import Account, Customer
from paygo.phones import normalise, try_normalise

NAME_LENGTH = 120


@dataclass(frozen=True)
class Found:
    """A customer and their accounts, oldest first."""

    customer: Customer
    accounts: list[Account]


def find_customer(*, session: Session, who: str, default_country: str) -> Found:
    """The customer with this phone (any local form), or holding this account number."""
    phone = try_normalise(who, default_country)
    if phone is not None:
        customer = session.exec(select(Customer).where(Customer.phone == phone)).first()
    else:  # an account number: a mistyped one is named as such
        account = get_account(session=session, number=normalise_number(who))
        customer = session.get(Customer, account.customer_id)
    if customer is None:
        raise NotFound(f"no customer with the phone or account {who.strip()!r}", customer=who)
    owned = session.exec(
        select(Account).where(Account.customer_id == customer.id).order_by(col(Account.id))
    )
    return Found(customer=customer, accounts=list(owned))


def update_customer(
    *,
    session: Session,
    customer: Customer,
    actor: str,
    reason: str,
    default_country: str,
    name: str | None = None,
    phone: str | None = None,
    language: str | None = None,
) -> dict[str, tuple[str, str]]:
    """Correct a customer's name, phone or language; return what changed (before, after)."""
    if not reason.strip():
        raise InvalidInput("say why: --reason is required to change a customer")
    wanted = {
        "name": None if name is None else _name(name),
        "phone": None if phone is None else _phone(session, customer, phone, default_country),
        "language": None if language is None else _language(language),
    }
    changed = {
        field: (str(getattr(customer, field)), value)
        for field, value in wanted.items()
        if value is not None and value != getattr(customer, field)
    }
    if not changed:
        raise InvalidInput("nothing to change: give --name, --phone or --language")
    for field, (_, value) in changed.items():
        setattr(customer, field, value)
    session.add(customer)
    audit.record(
        session=session,
        actor=actor,
        action="customer.update",
        target_type="customer",
        target_id=customer.id,
        reason=reason.strip(),
        changes={field: {"from": old, "to": new} for field, (old, new) in changed.items()},
    )
    session.flush()
    return changed


def _name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > NAME_LENGTH:
        raise InvalidInput(f"a name has 1 to {NAME_LENGTH} characters")
    return cleaned


def _phone(session: Session, customer: Customer, phone: str, default_country: str) -> str:
    e164 = normalise(phone, default_country)
    other = session.exec(
        select(Customer.id).where(Customer.phone == e164).where(col(Customer.id) != customer.id)
    ).first()
    if other is not None:
        raise Conflict(f"{e164} is already the phone of customer #{other}", phone=e164)
    return e164


def _language(language: str) -> str:
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", language=language)
    return language
