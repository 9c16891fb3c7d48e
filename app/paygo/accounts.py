"""Customers and their accounts: who pays for which box under which plan."""

from __future__ import annotations

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
    *, session: Session, name: str, phone: str, language: str = "en", default_country: str = "KE"
) -> Customer:
    """Find the customer with this phone, or register them."""
    e164 = normalise(phone, default_country)
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", language=language)
    customer = session.exec(select(Customer).where(Customer.phone == e164)).first()
    if customer is None:
        if not name.strip():
            raise InvalidInput("a new customer needs a name")
        customer = Customer(name=name.strip()[:120], phone=e164, language=language)
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
) -> Account:
    """Open an account: a customer takes a device from stock under a plan."""
    device = session.exec(
        select(Device).where(Device.serial == serial.strip()).with_for_update()
    ).first()
    if device is None:
        raise NotFound(f"no device with serial {serial!r}", serial=serial)
    if device.status not in (DeviceStatus.IN_STOCK, DeviceStatus.REPOSSESSED):
        raise Conflict(f"device {serial} is {device.status}, not in stock", serial=serial)
    customer = get_or_create_customer(
        session=session, name=name, phone=phone, language=language, default_country=default_country
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


def get_account(*, session: Session, number: str, lock: bool = False) -> Account:
    """Find an account by its number (exactly as stored)."""
    query = select(Account).where(Account.number == number.strip())
    account = session.exec(query.with_for_update() if lock else query).first()
    if account is None:
        raise NotFound(f"no account {number!r}", account=number)
    return account


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
