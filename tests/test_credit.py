"""Credit rules: each payment becomes exactly the right days and code, no money lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from app.credit import account_view, quote
from app.extensions import Gateway
from app.models import (
    Account,
    AccountStatus,
    Device,
    DeviceStatus,
    OutboundMessage,
    PaymentPlan,
    Token,
)
from app.tokens.codec import TokenKind
from app.tokens.keypad import KeypadStatus
from app.tokens.operator import record_manual_payment
from tests.factories import make_account, make_device, make_plan
from tests.keypads import keypad_for

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def pay(session: Session, gateway: Gateway, account: Account, amount: int,
        now: datetime = NOW, reference: str | None = None) -> tuple[list[Token], Account]:
    result = record_manual_payment(session=session, keys=gateway.keys, account=account,
                                   amount=amount, actor="test", now=now, reference=reference)
    session.commit()
    fresh = session.get(Account, account.id)
    assert fresh is not None
    session.refresh(fresh)
    return result.tokens, fresh


def plan_and_account(session: Session, gateway: Gateway, **plan: object) -> Account:
    account = make_account(session, gateway, plan=make_plan(session, **plan))
    session.commit()
    return account


def test_days_bought_is_amount_divided_by_price_per_day(session: Session,
                                                        gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    tokens, account = pay(session, gateway, account, 50000)
    assert [(t.type, t.days) for t in tokens] == [(TokenKind.ADD_TIME, 10)]
    assert account.credit_until == NOW + timedelta(days=10)


def test_remainder_is_kept_and_spent_with_the_next_payment(session: Session,
                                                           gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    tokens, account = pay(session, gateway, account, 12000)  # 2 days + 20.00 left
    assert tokens[0].days == 2 and account.remainder == 2000
    tokens, account = pay(session, gateway, account, 3000)   # 20 + 30 = one more day
    assert tokens[0].days == 1 and account.remainder == 0
    assert account.total_paid == 15000


def test_time_divider_buys_part_days_without_losing_money(session: Session,
                                                          gateway: Gateway) -> None:
    device = make_device(session, gateway, time_divider=4)
    account = make_account(session, gateway, device=device,
                           plan=make_plan(session, price_per_day=4000))
    session.commit()
    tokens, account = pay(session, gateway, account, 7000)  # 1.75 days in quarter-day steps
    assert tokens[0].value_raw == 7 and account.remainder == 0
    assert account.credit_until == NOW + timedelta(days=1.75)
    keypad = keypad_for(device, gateway.keys)
    assert keypad.enter(tokens[0].code).days == 1.75


def test_payment_below_minimum_is_kept_and_the_customer_told_the_minimum(
        session: Session, gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, min_payment=10000)
    tokens, account = pay(session, gateway, account, 6000)
    assert tokens == [] and account.remainder == 6000 and account.total_paid == 6000
    receipt = session.exec(select(OutboundMessage)).one()
    assert "Minimum payment is KES 100" in receipt.body
    tokens, account = pay(session, gateway, account, 10000)  # 60 + 100 = 3 days + 10 left
    assert tokens[0].days == 3 and account.remainder == 1000


def test_deposit_activates_the_account_with_the_deposit_days(session: Session,
                                                             gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, deposit=100000,
                               deposit_days=7)
    assert account.status == AccountStatus.PENDING_DEPOSIT
    tokens, account = pay(session, gateway, account, 60000)
    assert tokens == [] and account.status == AccountStatus.PENDING_DEPOSIT
    assert "Pay KES 400 more deposit" in session.exec(select(OutboundMessage)).one().body
    tokens, account = pay(session, gateway, account, 50000)  # 400 deposit + 100 = 2 days
    assert account.status == AccountStatus.ACTIVE
    assert [t.days for t in tokens] == [9]
    device = session.get(Device, account.device_id)
    assert device is not None and device.status == DeviceStatus.ACTIVE


def test_credit_runs_from_now_when_it_had_expired(session: Session, gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    pay(session, gateway, account, 10000, now=NOW)                 # until NOW + 2 days
    later = NOW + timedelta(days=30)
    _, account = pay(session, gateway, account, 10000, now=later)
    assert account.credit_until == later + timedelta(days=2)


def test_credit_extends_from_credit_until_while_it_runs(session: Session,
                                                        gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    pay(session, gateway, account, 50000, now=NOW)                 # until NOW + 10 days
    _, account = pay(session, gateway, account, 10000, now=NOW + timedelta(days=1))
    assert account.credit_until == NOW + timedelta(days=12)


def test_reaching_the_total_unlocks_the_box_for_good(session: Session,
                                                     gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, total_price=100000)
    pay(session, gateway, account, 60000)
    tokens, account = pay(session, gateway, account, 40000)
    assert [t.type for t in tokens] == [TokenKind.DISABLE_PAYG]
    device = session.get(Device, account.device_id)
    assert device is not None
    assert account.status == AccountStatus.PAID_OFF and device.status == DeviceStatus.PAID_OFF
    keypad = keypad_for(device, gateway.keys)
    for token in session.exec(select(Token).order_by(Token.count)):
        assert keypad.enter(token.code).accepted
    assert keypad.payg_enabled is False


def test_money_beyond_the_total_is_recorded_as_overpayment(session: Session,
                                                           gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, total_price=100000)
    tokens, account = pay(session, gateway, account, 130000)
    assert account.total_paid == 100000 and account.overpayment == 30000
    assert "KES 300 overpaid will be refunded" in session.exec(select(OutboundMessage)).one().body
    tokens, account = pay(session, gateway, account, 5000)  # after pay-off: all refundable
    assert tokens == [] and account.overpayment == 35000 and account.total_paid == 100000


def test_pay_per_use_plan_never_pays_off(session: Session, gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=100, total_price=None)
    tokens, account = pay(session, gateway, account, 9_000_000)
    assert account.status == AccountStatus.ACTIVE
    assert TokenKind.DISABLE_PAYG not in {t.type for t in tokens}


def test_more_than_995_days_becomes_several_codes_the_box_accepts(session: Session,
                                                                   gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=100)
    tokens, account = pay(session, gateway, account, 2000 * 100)
    assert [t.days for t in tokens] == [995, 995, 10]
    device = session.get(Device, account.device_id)
    assert device is not None
    keypad = keypad_for(device, gateway.keys)
    assert all(keypad.enter(t.code).accepted for t in tokens)
    assert keypad.days_left == 2000


def test_extended_device_gets_one_twelve_digit_code_for_long_credit(session: Session,
                                                                    gateway: Gateway) -> None:
    device = make_device(session, gateway, extended=True)
    account = make_account(session, gateway, device=device,
                           plan=make_plan(session, price_per_day=100))
    session.commit()
    tokens, _ = pay(session, gateway, account, 2000 * 100)
    assert len(tokens) == 1 and len(tokens[0].code) == 12
    keypad = keypad_for(device, gateway.keys)
    assert keypad.enter(tokens[0].code).days == 2000


def test_quote_answers_without_changing_anything(session: Session, gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, deposit=10000,
                               deposit_days=3)
    plan = session.get(PaymentPlan, account.plan_id)
    assert plan is not None
    q = quote(plan=plan, account=account, amount=20000, now=NOW)
    assert (q.activates, q.days, q.remainder_after) == (True, 5, 0)
    session.refresh(account)
    assert account.total_paid == 0 and account.credit_until is None
    assert session.exec(select(Token)).all() == []


def test_recording_the_same_receipt_twice_credits_once(session: Session,
                                                       gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    first, _ = pay(session, gateway, account, 10000, reference="RCPT1")
    again, account = pay(session, gateway, account, 10000, reference="RCPT1")
    assert [t.id for t in again] == [t.id for t in first]
    assert account.total_paid == 10000
    assert len(session.exec(select(OutboundMessage)).all()) == 1


def test_receipt_is_in_the_customers_language_and_fits_one_sms(session: Session,
                                                               gateway: Gateway) -> None:
    for language, words in (("en", "Token:"), ("sw", "Tokeni:"), ("fr", "Code:")):
        account = make_account(session, gateway, language=language,
                               plan=make_plan(session, price_per_day=5000))
        session.commit()
        pay(session, gateway, account, 50000)
        body = session.exec(select(OutboundMessage)
                            .where(OutboundMessage.account_id == account.id)).one().body
        assert words in body and len(body) <= 160, body


@pytest.mark.parametrize("restricted", [False, True])
def test_every_payment_code_is_accepted_by_the_box_in_order(session: Session,
                                                            gateway: Gateway,
                                                            restricted: bool) -> None:
    device = make_device(session, gateway, restricted=restricted)
    account = make_account(session, gateway, device=device,
                           plan=make_plan(session, price_per_day=1000))
    session.commit()
    keypad = keypad_for(device, gateway.keys)
    for i in range(12):
        tokens, account = pay(session, gateway, account, 1000 * (i + 1))
        result = keypad.enter(tokens[0].code)
        assert result.status is KeypadStatus.ACCEPTED and result.days == i + 1
    assert keypad.days_left == sum(range(1, 13))


def test_account_view_shows_credit_state(session: Session, gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, total_price=200000)
    _, account = pay(session, gateway, account, 52000)
    view = account_view(session=session, account=account, now=NOW + timedelta(days=4))
    assert view["days_left"] == 6.0 and view["total_paid"] == 52000
    assert view["left_to_pay"] == 148000 and view["remainder"] == 2000
    assert view["credit_until"] == NOW + timedelta(days=10)
