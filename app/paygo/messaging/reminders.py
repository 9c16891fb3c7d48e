"""Scheduled reminders: credit about to end, and "you are out of light" after it ended.

Each reminder is an outbox row with a dedupe key derived from the account and the
credit-until date, so running the job every hour (or twice at once) writes it once.
Reminders are held until the end of quiet hours in the customer's timezone.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, func, select

from paygo.gateway import Gateway
from paygo.messaging import quiet
from paygo.messaging.outbox import queue_message
from paygo.messaging.sending import send_committed
from paygo.models import (
    Account,
    AccountStatus,
    Customer,
    Payment,
    PaymentPlan,
    row_id,
    utcnow,
)
from paygo.texts.catalogue import Catalogue
from paygo.texts.reminders import render as render_reminder

if TYPE_CHECKING:  # settings reads the provider registry in this package
    from paygo.settings import Settings

KIND = "reminder"
#: "Out of light" goes out on these days after the credit ended: (day, until day).
OFF_STEPS = ((1, 3), (3, 7), (7, 8))


@dataclass(frozen=True)
class Reminder:
    """One reminder to write: to whom, what, once per `dedupe_key`, not before a time."""

    account_id: int
    recipient: str
    dedupe_key: str
    body: str
    not_before: datetime


def due(*, session: Session, now: datetime, settings: Settings, texts: Catalogue) -> list[Reminder]:
    """The reminders active accounts are due now."""
    days_before = session.exec(select(func.max(PaymentPlan.reminder_days_before))).one() or 0
    rows = session.exec(
        select(Account, Customer, PaymentPlan)
        .join(Customer, col(Customer.id) == col(Account.customer_id))
        .join(PaymentPlan, col(PaymentPlan.id) == col(Account.plan_id))
        .where(Account.status == AccountStatus.ACTIVE)
        .where(col(Account.credit_until).is_not(None))
        .where(col(Account.credit_until) > now - timedelta(days=OFF_STEPS[-1][1] + 1))
        .where(col(Account.credit_until) <= now + timedelta(days=max(days_before, 0) + 1))
        .order_by(col(Account.id))
    )
    found = (
        _reminder(session, account, customer, plan, now, settings, texts)
        for account, customer, plan in rows
    )
    return [r for r in found if r is not None]


def _reminder(
    session: Session,
    account: Account,
    customer: Customer,
    plan: PaymentPlan,
    now: datetime,
    settings: Settings,
    texts: Catalogue,
) -> Reminder | None:
    assert account.id is not None and account.credit_until is not None
    tz = quiet.zone(customer.timezone, settings.default_timezone)
    today, expiry = now.astimezone(tz).date(), account.credit_until.astimezone(tz).date()
    if account.credit_until > now:
        kind, key = "expiry", f"reminder:{account.id}:expiry:{expiry.isoformat()}"
        if not _expiry_due(session, account.id, plan.reminder_days_before, today, expiry, tz):
            return None
    else:
        step = next((s for s, until in OFF_STEPS if s <= (today - expiry).days < until), None)
        if step is None:
            return None
        kind, key = "out_of_light", f"reminder:{account.id}:off:{expiry.isoformat()}:{step}"
    lang = texts.language(customer.language, settings.default_language)
    body = render_reminder(
        kind,
        lang,
        texts=texts,
        max_parts=settings.sms_max_parts,
        distributor=settings.distributor_name,
        paybill=settings.paybill_number,
        account=account.number,
        date=texts.day_month(expiry, lang),
    )
    not_before = quiet.next_allowed(now, tz, settings.quiet_hours_start, settings.quiet_hours_end)
    return Reminder(account.id, customer.phone, key, body, not_before)


def _expiry_due(
    session: Session,
    account_id: int,
    days_before: int,
    today: date,
    expiry: date,
    tz: zoneinfo.ZoneInfo,
) -> bool:
    """N days before the end, unless the customer paid since that day began."""
    if days_before <= 0 or today < expiry - timedelta(days=days_before):
        return False
    # A daily payer always has a day or two left: their receipt says so, no reminder.
    window_start = datetime.combine(expiry - timedelta(days=days_before), time(0), tzinfo=tz)
    last_paid = session.exec(
        select(func.max(Payment.credited_at)).where(Payment.account_id == account_id)
    ).one()
    return last_paid is None or last_paid < window_start


def write_due(gateway: Gateway, *, now: datetime | None = None) -> list[int]:
    """Write the reminders due now and send them; returns the ids written this time."""
    now = now or utcnow()
    with gateway.db.transaction() as session:
        written = write(session=session, settings=gateway.settings, texts=gateway.texts, now=now)
    send_committed(gateway, written)
    return written


def write(*, session: Session, settings: Settings, texts: Catalogue, now: datetime) -> list[int]:
    """Write the reminders due now to the outbox; returns the ids of the rows written."""
    written: list[int] = []
    for reminder in due(session=session, now=now, settings=settings, texts=texts):
        message = queue_message(
            session=session,
            recipient=reminder.recipient,
            body=reminder.body,
            kind=KIND,
            dedupe_key=reminder.dedupe_key,
            account_id=reminder.account_id,
        )
        if message is None:  # written by an earlier run
            continue
        if reminder.not_before > now:
            message.next_attempt_at = reminder.not_before
            session.add(message)
        written.append(row_id(message.id))
    return written
