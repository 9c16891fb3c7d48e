"""Reminders: N days before credit ends, "out of light" on days 1, 3 and 7, once each."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlmodel import col, select

from paygo.gateway import Gateway
from paygo.messaging import reminders
from paygo.models import (
    Account,
    AccountStatus,
    Customer,
    MessageStatus,
    OutboundMessage,
    Payment,
    PaymentStatus,
    utcnow,
)
from paygo.texts import sms
from tests.factories import make_account, make_plan
from tests.messaging_helpers import gateway_of

NAIROBI = zoneinfo.ZoneInfo("Africa/Nairobi")
#: No quiet hours, so what is due is sent at whatever hour the suite runs.
AWAKE = {"quiet_hours_start": 0, "quiet_hours_end": 0}


def _account(
    gateway: Gateway,
    *,
    credit_until: datetime,
    days_before: int = 2,
    language: str = "en",
    timezone: str = "Africa/Nairobi",
    status: str = AccountStatus.ACTIVE,
) -> Account:
    with gateway.db.transaction() as session:
        account = make_account(
            session,
            gateway,
            language=language,
            plan=make_plan(session, reminder_days_before=days_before),
        )
        account.credit_until, account.status = credit_until, status
        customer = session.get(Customer, account.customer_id)
        assert customer is not None
        customer.timezone = timezone
        session.add_all([account, customer])
    return account


def _reminders(gateway: Gateway) -> list[OutboundMessage]:
    with gateway.db.session() as session:
        return list(
            session.exec(
                select(OutboundMessage)
                .where(OutboundMessage.kind == reminders.KIND)
                .order_by(col(OutboundMessage.id))
            )
        )


def _local_noon(day_offset: int, base: datetime | None = None) -> datetime:
    base = (base or utcnow()).astimezone(NAIROBI)
    noon = base.replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=day_offset)
    return noon.astimezone(UTC)


def test_expiry_reminder_goes_out_two_days_before_and_is_sent(
    make_app: Callable[..., Flask],
) -> None:
    gateway = gateway_of(make_app(**AWAKE))
    account = _account(gateway, credit_until=utcnow() + timedelta(days=1, hours=12))
    assert len(reminders.write_due(gateway)) == 1
    (message,) = _reminders(gateway)
    assert message.status == MessageStatus.SENT and message.account_id == account.id
    assert f"account {account.number}" in message.body and "ends on" in message.body
    assert sms.parts(message.body) == 1


def test_expiry_reminder_follows_the_plans_days_before(make_app: Callable[..., Flask]) -> None:
    gateway = gateway_of(make_app(**AWAKE))
    _account(gateway, credit_until=utcnow() + timedelta(days=5), days_before=2)
    assert reminders.write_due(gateway) == []
    _account(gateway, credit_until=utcnow() + timedelta(days=5), days_before=6)
    assert len(reminders.write_due(gateway)) == 1
    _account(gateway, credit_until=utcnow() + timedelta(hours=5), days_before=0)
    assert reminders.write_due(gateway) == []


def test_expiry_reminder_is_written_once_per_expiry_date(make_app: Callable[..., Flask]) -> None:
    gateway = gateway_of(make_app(**AWAKE))
    account = _account(gateway, credit_until=utcnow() + timedelta(days=1))
    for _ in range(3):  # the hourly job, run again and again
        reminders.write_due(gateway)
    assert len(_reminders(gateway)) == 1
    with gateway.db.transaction() as session:  # a payment moves the end by a day
        stored = session.get(Account, account.id)
        assert stored is not None and stored.credit_until is not None
        stored.credit_until += timedelta(days=1)
        session.add(stored)
    reminders.write_due(gateway)
    assert len(_reminders(gateway)) == 2


def test_no_expiry_reminder_when_the_customer_paid_within_the_window(
    make_app: Callable[..., Flask],
) -> None:
    gateway = gateway_of(make_app(**AWAKE))
    account = _account(gateway, credit_until=utcnow() + timedelta(days=1))
    with gateway.db.transaction() as session:
        session.add(
            Payment(
                provider="mpesa",
                provider_txn_id="QX1",
                amount=5000,
                currency="KES",
                raw="{}",
                status=PaymentStatus.CREDITED,
                account_id=account.id,
                credited_at=utcnow() - timedelta(hours=1),
            )
        )
    assert reminders.write_due(gateway) == []


def test_out_of_light_goes_out_on_days_one_three_and_seven_only(
    make_app: Callable[..., Flask],
) -> None:
    gateway = gateway_of(make_app(**AWAKE))
    expired = _local_noon(-20)
    account = _account(gateway, credit_until=expired)
    days_written = []
    for day in range(0, 10):  # the job runs every day after the credit ended
        if reminders.write_due(gateway, now=expired + timedelta(days=day, hours=1)):
            days_written.append(day)
    assert days_written == [1, 3, 7]
    bodies = [m.body for m in _reminders(gateway)]
    assert all("out of light" in b and account.number in b for b in bodies)


def test_a_missed_day_one_is_caught_up_on_day_two_but_never_after_day_three(
    make_app: Callable[..., Flask],
) -> None:
    gateway = gateway_of(make_app(**AWAKE))
    expired = _local_noon(-20)
    _account(gateway, credit_until=expired)
    assert len(reminders.write_due(gateway, now=expired + timedelta(days=2))) == 1
    assert reminders.write_due(gateway, now=expired + timedelta(days=2, hours=5)) == []
    assert len(reminders.write_due(gateway, now=expired + timedelta(days=4))) == 1
    assert reminders.write_due(gateway, now=expired + timedelta(days=30)) == []


@pytest.mark.parametrize(
    "status", [AccountStatus.PAID_OFF, AccountStatus.REPOSSESSED, AccountStatus.PENDING_DEPOSIT]
)
def test_accounts_not_active_get_no_reminders(make_app: Callable[..., Flask], status: str) -> None:
    gateway = gateway_of(make_app(**AWAKE))
    _account(gateway, credit_until=utcnow() + timedelta(days=1), status=status)
    _account(gateway, credit_until=utcnow() - timedelta(days=1), status=status)
    assert reminders.write_due(gateway) == []


@pytest.mark.parametrize(
    ("language", "phrase"),
    [("en", "Pay to PayBill"), ("sw", "Lipa kwa PayBill"), ("fr", "Payez au PayBill")],
)
def test_reminders_are_in_the_customers_language_within_one_sms(
    make_app: Callable[..., Flask], language: str, phrase: str
) -> None:
    gateway = gateway_of(make_app(**AWAKE, distributor_name="SunPower Solar Kenya Ltd"))
    _account(gateway, credit_until=utcnow() + timedelta(days=1), language=language)
    _account(gateway, credit_until=_local_noon(-1), language=language)
    reminders.write_due(gateway)
    bodies = [m.body for m in _reminders(gateway)]
    assert len(bodies) == 2 and all(phrase in b for b in bodies)
    assert all(sms.encoding(b) == "gsm7" and sms.parts(b) == 1 for b in bodies)


def test_reminders_wait_for_the_morning_in_the_customers_timezone(
    make_app: Callable[..., Flask],
) -> None:
    gateway = gateway_of(make_app(quiet_hours_start=20, quiet_hours_end=7))
    # Tomorrow 18:30 UTC: 21:30 in Nairobi (quiet), 19:30 in Kinshasa (not yet).
    evening = (utcnow() + timedelta(days=1)).replace(hour=18, minute=30, second=0, microsecond=0)
    nairobi = _account(gateway, credit_until=evening + timedelta(days=1))
    kinshasa = _account(
        gateway, credit_until=evening + timedelta(days=1), timezone="Africa/Kinshasa"
    )
    with gateway.db.session() as session:
        due = {
            r.account_id: r
            for r in reminders.due(
                session=session, now=evening, settings=gateway.settings, texts=gateway.texts
            )
        }
    morning = (evening + timedelta(days=1)).replace(hour=4, minute=0)  # 07:00 in Nairobi
    assert due[nairobi.id or 0].not_before == morning
    assert due[kinshasa.id or 0].not_before == evening
    reminders.write_due(gateway, now=evening)
    held = next(m for m in _reminders(gateway) if m.account_id == nairobi.id)
    assert held.status == MessageStatus.QUEUED and held.next_attempt_at == morning


def test_reminders_run_command_writes_and_reports(make_app: Callable[..., Flask]) -> None:
    app = make_app(**AWAKE)
    _account(gateway_of(app), credit_until=utcnow() + timedelta(days=1))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reminders", "run", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["written"]) == 1
    assert runner.invoke(args=["reminders", "run"]).output.strip() == "0 reminder(s) written"
