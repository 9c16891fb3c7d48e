"""Customers and their accounts: who pays for which box under which plan."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from paygo import accountnumbers
from paygo.errors import Conflict, InvalidInput, NotFound
from paygo.models import (
    Account,
    AccountStatus,
    Customer,
    Device,
    DeviceStatus,
    PaymentPlan,
    row_id,
    utcnow,
)
from paygo.phones import normalise

LANGUAGES = ("en", "sw", "fr")
#: Accounts that still hold a box on credit (matching and menus consider these).
OPEN_STATUSES = (AccountStatus.PENDING_DEPOSIT, AccountStatus.ACTIVE)


def get_or_create_customer(
    *,
    session: Session,
    name: str,
    phone: str,
    language: str = "en",
    default_country: str = "KE",
    timezone: str = "Africa/Nairobi",
) -> Customer:
    """Find the customer with this phone, or register them (in the distributor's zone)."""
    e164 = normalise(phone, default_country)
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", language=language)
    customer = session.exec(select(Customer).where(Customer.phone == e164)).first()
    if customer is None:
        if not name.strip():
            raise InvalidInput("a new customer needs a name")
        customer = Customer(
            name=name.strip()[:120], phone=e164, language=language, timezone=timezone
        )
        session.add(customer)
        session.flush()
    return customer


def create_account(
    *,
    session: Session,
    name: str,
    phone: str,
    serial: str,
    plan: PaymentPlan,
    language: str = "en",
    default_country: str = "KE",
    timezone: str = "Africa/Nairobi",
) -> Account:
    """Open an account: a customer takes a device from stock under a plan."""
    if plan.retired_at is not None:
        raise Conflict(
            f"plan {plan.name!r} is retired: new accounts cannot be opened on it", plan=plan.name
        )
    device = session.exec(
        select(Device).where(Device.serial == serial.strip()).with_for_update()
    ).first()
    if device is None:
        raise NotFound(f"no device with serial {serial!r}", serial=serial)
    if device.status not in (DeviceStatus.IN_STOCK, DeviceStatus.REPOSSESSED):
        raise Conflict(f"device {serial} is {device.status}, not in stock", serial=serial)
    customer = get_or_create_customer(
        session=session,
        name=name,
        phone=phone,
        language=language,
        default_country=default_country,
        timezone=timezone,
    )
    account = Account(
        number=_next_number(session),
        customer_id=row_id(customer.id),
        device_id=row_id(device.id),
        plan_id=row_id(plan.id),
        status=AccountStatus.PENDING_DEPOSIT if plan.deposit > 0 else AccountStatus.ACTIVE,
    )
    device.status = DeviceStatus.ASSIGNED
    device.updated_at = utcnow()
    session.add_all([account, device])
    session.flush()
    return account


def _next_number(session: Session) -> str:
    last = session.exec(select(Account.id).order_by(col(Account.id).desc())).first() or 0
    sequence = last + 1
    while True:
        number = accountnumbers.from_sequence(sequence)
        if session.exec(select(Account.id).where(Account.number == number)).first() is None:
            return number
        sequence += 1


#: What people put between the digits of an account number (`1000 0004`, `1000-0004`).
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")


def normalise_number(typed: str) -> str:
    """An account number as typed, with its spaces and dashes taken out."""
    return _SEPARATORS.sub("", typed)


def get_account(*, session: Session, number: str, lock: bool = False) -> Account:
    """Find an account by its number, typed with or without spaces or dashes.

    A number whose check digit is wrong says so, with the real accounts one mistyped
    digit or one swapped pair away.
    """
    wanted = normalise_number(number)
    query = select(Account).where(Account.number == wanted)
    account = session.exec(query.with_for_update() if lock else query).first()
    if account is None:
        raise NotFound(_not_found(session, wanted), account=number)
    return account


def _not_found(session: Session, number: str) -> str:
    if not (number.isascii() and number.isdigit()) or accountnumbers.is_valid(number):
        return f"no account {number!r}"
    near = session.exec(
        select(Account.number)
        .where(col(Account.number).in_(list(accountnumbers.corrections(number))))
        .order_by(col(Account.number))
    ).all()
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    return f"no account {number}: its check digit is wrong{hint}"


def accounts_for_phone(*, session: Session, phone: str) -> list[Account]:
    """The open and paid-off accounts of the customer with this E.164 phone."""
    return list(
        session.exec(
            select(Account)
            .join(Customer, col(Customer.id) == col(Account.customer_id))
            .where(Customer.phone == phone)
            .where(col(Account.status).in_([*OPEN_STATUSES, AccountStatus.PAID_OFF]))
            .order_by(col(Account.id))
        )
    )
