"""Credit rules: each payment becomes exactly the right days and code, no money lost.

Every code a payment issues is typed into the simulated box (`pay` does it), so a rule
that gave the wrong code or a wrong count would fail here too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from paygo.cli.views import account_view
from paygo.credit import Quote, days_left_shown, quote
from paygo.errors import PaymentError
from paygo.gateway import Gateway
from paygo.models import (
    Account,
    AccountStatus,
    AuditLog,
    Device,
    DeviceStatus,
    OutboundMessage,
    Payment,
    PaymentPlan,
    PaymentStatus,
    Token,
)
from paygo.payments.manual import record_manual_payment
from paygo.payments.tasks import reconcile
from paygo.texts import sms
from paygo.texts.catalogue import shipped
from paygo.texts.receipts import render_receipt
from paygo.tokens.codec import TokenKind, format_code
from tests.factories import make_account, make_device, make_plan
from tests.keypads import Boxes

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def boxes(session: Session, gateway: Gateway) -> Boxes:
    return Boxes(session, gateway.keys)


def pay(
    session: Session,
    gateway: Gateway,
    boxes: Boxes,
    account: Account,
    amount: int,
    now: datetime = NOW,
    reference: str | None = None,
) -> tuple[list[Token], Account]:
    """Pay in cash, type every code it gives into the box, return the codes and the account."""
    result = record_manual_payment(
        session=session,
        keys=gateway.keys,
        texts=gateway.texts,
        account=account,
        amount=amount,
        actor="test",
        now=now,
        reference=reference,
    )
    session.commit()
    boxes.type(result.tokens)
    fresh = session.get(Account, account.id)
    assert fresh is not None
    session.refresh(fresh)
    return result.tokens, fresh


def plan_and_account(
    session: Session, gateway: Gateway, device: Device | None = None, **plan: object
) -> Account:
    account = make_account(session, gateway, plan=make_plan(session, **plan), device=device)
    session.commit()
    return account


def last_sms(session: Session, account: Account) -> str:
    message = session.exec(
        select(OutboundMessage)
        .where(OutboundMessage.account_id == account.id)
        .order_by(col(OutboundMessage.id).desc())
    ).first()
    assert message is not None
    return message.body


def mobile_payment(
    session: Session, gateway: Gateway, account: Account, amount: int, currency: str = "KES"
) -> Payment:
    """A mobile-money payment with the account number as reference, through the payment job."""
    payment = Payment(
        provider="mpesa",
        provider_txn_id=uuid.uuid4().hex[:10].upper(),
        amount=amount,
        currency=currency,
        reference=account.number,
        raw="{}",
    )
    session.add(payment)
    session.commit()
    reconcile(gateway, payment.id or 0)  # what the payment job runs
    session.refresh(payment)
    session.commit()
    return payment


# Days bought and the remainder ---------------------------------------------------------


def test_days_bought_is_amount_divided_by_price_per_day(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    tokens, account = pay(session, gateway, boxes, account, 50000)
    assert [(t.type, t.days) for t in tokens] == [(TokenKind.ADD_TIME, 10)]
    assert account.credit_until == NOW + timedelta(days=10)
    assert boxes.keypad(account.device_id).days_left == 10


def test_remainder_is_kept_and_spent_with_the_next_payment(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    tokens, account = pay(session, gateway, boxes, account, 12000)  # 2 days + 20.00 left
    assert tokens[0].days == 2 and account.remainder == 2000
    tokens, account = pay(session, gateway, boxes, account, 3000)  # 20 + 30 = one more day
    assert tokens[0].days == 1 and account.remainder == 0
    assert account.total_paid == 15000 and boxes.keypad(account.device_id).days_left == 3


def test_time_divider_buys_part_days_without_losing_money(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    device = make_device(session, gateway, time_divider=4)
    account = plan_and_account(session, gateway, device=device, price_per_day=4000)
    tokens, account = pay(session, gateway, boxes, account, 7000)  # 1.75 days, quarter steps
    assert tokens[0].value_raw == 7 and account.remainder == 0
    assert account.credit_until == NOW + timedelta(days=1.75)
    assert boxes.keypad(account.device_id).days_left == 1.75
    assert "(1.75 days" in last_sms(session, account)


def test_a_price_the_divider_does_not_split_buys_whole_minor_unit_steps_and_keeps_the_rest(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    # 50.02 a day in quarter days: a quarter would cost 12.505, half a day costs 25.01.
    device = make_device(session, gateway, time_divider=4)
    account = plan_and_account(session, gateway, device=device, price_per_day=5002)
    tokens, account = pay(session, gateway, boxes, account, 7600)  # 3 halves + 0.97 kept
    assert tokens[0].value_raw == 6 and account.remainder == 97
    tokens, account = pay(session, gateway, boxes, account, 2404)  # 0.97 + 24.04 = a half
    assert tokens[0].value_raw == 2 and account.remainder == 0
    assert boxes.keypad(account.device_id).days_left == 2.0
    assert account.total_paid == 2 * 5002  # every cent became time: nothing rounded away
    odd = make_device(session, gateway, time_divider=3)
    thirds = plan_and_account(session, gateway, device=odd, price_per_day=5000)
    tokens, thirds = pay(session, gateway, boxes, thirds, 6000)  # a third costs 16.666...
    assert tokens[0].value_raw == 3 and thirds.remainder == 1000


# Minimum payment -------------------------------------------------------------------------


def test_payment_below_minimum_is_kept_and_the_customer_told_the_minimum(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, min_payment=10000)
    tokens, account = pay(session, gateway, boxes, account, 6000)
    assert tokens == [] and account.remainder == 6000 and account.total_paid == 6000
    assert "Minimum payment is KES 100" in last_sms(session, account)
    tokens, account = pay(session, gateway, boxes, account, 10000)  # 60 + 100 = 3 days + 10
    assert tokens[0].days == 3 and account.remainder == 1000


def test_the_last_payment_may_be_below_the_minimum(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(
        session, gateway, price_per_day=5000, min_payment=10000, total_price=100000
    )
    pay(session, gateway, boxes, account, 95000)
    tokens, account = pay(session, gateway, boxes, account, 5000)  # only 50 was left to pay
    assert [t.type for t in tokens] == [TokenKind.DISABLE_PAYG]
    assert account.status == AccountStatus.PAID_OFF


def test_a_payment_too_small_for_a_day_is_kept_and_the_receipt_says_how_much_more(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)  # no minimum
    tokens, account = pay(session, gateway, boxes, account, 2000)
    assert tokens == [] and account.remainder == 2000
    body = last_sms(session, account)
    assert "pay KES 30 more" in body and "Minimum" not in body


# Deposit ---------------------------------------------------------------------------------


def test_deposit_activates_the_account_with_the_deposit_days(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, deposit=100000, deposit_days=7)
    assert account.status == AccountStatus.PENDING_DEPOSIT
    tokens, account = pay(session, gateway, boxes, account, 60000)
    assert tokens == [] and account.status == AccountStatus.PENDING_DEPOSIT
    assert "Pay KES 400 more deposit" in last_sms(session, account)
    tokens, account = pay(session, gateway, boxes, account, 50000)  # 400 deposit + 2 days
    assert account.status == AccountStatus.ACTIVE and account.activated_at == NOW
    assert [t.days for t in tokens] == [9] and boxes.keypad(account.device_id).days_left == 9
    device = session.get(Device, account.device_id)
    assert device is not None and device.status == DeviceStatus.ACTIVE


def test_a_plan_without_deposit_opens_active_and_the_first_payment_brings_the_deposit_days(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, deposit=0, deposit_days=3)
    assert account.status == AccountStatus.ACTIVE and account.activated_at is None
    tokens, account = pay(session, gateway, boxes, account, 10000)  # 2 days + 3 free
    assert [t.days for t in tokens] == [5] and account.activated_at == NOW
    tokens, account = pay(session, gateway, boxes, account, 10000)  # once only
    assert [t.days for t in tokens] == [2] and boxes.keypad(account.device_id).days_left == 7
    device = session.get(Device, account.device_id)
    assert device is not None and device.status == DeviceStatus.ACTIVE


def test_a_deposit_payment_that_also_pays_off_unlocks_the_box_at_once(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(
        session, gateway, price_per_day=5000, deposit=100000, deposit_days=7, total_price=100000
    )
    tokens, account = pay(session, gateway, boxes, account, 120000)
    assert [t.type for t in tokens] == [TokenKind.DISABLE_PAYG]
    assert (account.status, account.total_paid, account.overpayment) == (
        AccountStatus.PAID_OFF,
        100000,
        20000,
    )
    assert account.activated_at == NOW and account.paid_off_at == NOW
    assert boxes.keypad(account.device_id).payg_enabled is False
    assert "Unlock code" in last_sms(session, account)
    assert account.credit_until is None  # no days bought: the box is simply unlocked


def test_paying_exactly_a_deposit_without_deposit_days_says_what_buys_the_first_code(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, deposit=100000)
    tokens, account = pay(session, gateway, boxes, account, 100000)
    assert tokens == [] and account.status == AccountStatus.ACTIVE
    assert "deposit is paid: pay KES 50 more for your first code" in last_sms(session, account)


# When credit runs ------------------------------------------------------------------------


def test_credit_runs_from_now_when_it_had_expired(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    pay(session, gateway, boxes, account, 10000, now=NOW)  # until NOW + 2 days
    later = NOW + timedelta(days=30)
    _, account = pay(session, gateway, boxes, account, 10000, now=later)
    assert account.credit_until == later + timedelta(days=2)


def test_credit_extends_from_credit_until_while_it_runs(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    pay(session, gateway, boxes, account, 50000, now=NOW)  # until NOW + 10 days
    _, account = pay(session, gateway, boxes, account, 10000, now=NOW + timedelta(days=1))
    assert account.credit_until == NOW + timedelta(days=12)


# Paying off ------------------------------------------------------------------------------


def test_reaching_the_total_unlocks_the_box_for_good(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, total_price=100000)
    pay(session, gateway, boxes, account, 60000)
    tokens, account = pay(session, gateway, boxes, account, 40000)
    assert [t.type for t in tokens] == [TokenKind.DISABLE_PAYG]
    device = session.get(Device, account.device_id)
    assert device is not None
    assert account.status == AccountStatus.PAID_OFF and device.status == DeviceStatus.PAID_OFF
    assert boxes.keypad(account.device_id).payg_enabled is False


def test_money_beyond_the_total_is_recorded_as_overpayment_to_refund(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, total_price=100000)
    tokens, account = pay(session, gateway, boxes, account, 130000)
    assert account.total_paid == 100000 and account.overpayment == 30000
    assert "KES 300 overpaid will be refunded" in last_sms(session, account)
    tokens, account = pay(session, gateway, boxes, account, 5000)  # after pay-off: all owed back
    assert tokens == [] and account.overpayment == 35000 and account.total_paid == 100000
    assert "already paid off" in last_sms(session, account)
    view = account_view(session=session, account=account, now=NOW)
    assert view["overpayment"] == 35000 and view["left_to_pay"] == 0


def test_pay_per_use_plan_never_pays_off(session: Session, gateway: Gateway, boxes: Boxes) -> None:
    account = plan_and_account(session, gateway, price_per_day=1000, total_price=None)
    tokens, account = pay(session, gateway, boxes, account, 3_000_000)
    assert account.status == AccountStatus.ACTIVE and account.overpayment == 0
    assert TokenKind.DISABLE_PAYG not in {t.type for t in tokens}
    assert boxes.keypad(account.device_id).days_left == 3000


# Long credit -----------------------------------------------------------------------------


def test_more_than_995_days_becomes_several_codes_the_box_accepts(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=100)
    tokens, account = pay(session, gateway, boxes, account, 2000 * 100)
    assert [t.days for t in tokens] == [995, 995, 10]
    assert boxes.keypad(account.device_id).days_left == 2000
    assert "Tokens, type in this order" in last_sms(session, account)


def test_extended_device_gets_one_twelve_digit_code_for_long_credit(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    device = make_device(session, gateway, extended=True)
    account = plan_and_account(session, gateway, device=device, price_per_day=100)
    tokens, _ = pay(session, gateway, boxes, account, 2000 * 100)
    assert len(tokens) == 1 and len(tokens[0].code) == 12
    assert boxes.keypad(account.device_id).days_left == 2000


# Quoting ---------------------------------------------------------------------------------


def test_quote_answers_without_changing_anything(session: Session, gateway: Gateway) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, deposit=10000, deposit_days=3)
    plan = session.get(PaymentPlan, account.plan_id)
    assert plan is not None
    q = quote(plan=plan, account=account, amount=20000, now=NOW)
    assert (q.activates, q.days, q.remainder_after) == (True, 5, 0)
    session.expire_all()
    account = session.get(Account, account.id) or account
    assert account.total_paid == 0 and account.credit_until is None
    assert session.exec(select(Token)).all() == []
    assert session.exec(select(OutboundMessage)).all() == []


def test_quote_is_exactly_what_the_payment_then_does(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    device = make_device(session, gateway, time_divider=4)
    account = plan_and_account(
        session,
        gateway,
        device=device,
        price_per_day=3000,
        deposit=10000,
        deposit_days=2,
        min_payment=1000,
        total_price=60000,
    )
    plan = session.get(PaymentPlan, account.plan_id)
    assert plan is not None
    for i, amount in enumerate([4000, 500, 9000, 2600, 50000]):
        now = NOW + timedelta(days=i)
        before = quote(plan=plan, account=account, amount=amount, now=now, divider=4)
        result = record_manual_payment(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            account=account,
            amount=amount,
            actor="test",
            now=now,
        )
        session.commit()
        boxes.type(result.tokens)
        session.refresh(account)
        assert result.quote == before
        assert (account.remainder, account.credit_until) == (
            before.remainder_after,
            before.credit_until,
        )
        assert (
            sum(t.value_raw for t in result.tokens if t.type == TokenKind.ADD_TIME) == before.steps
        )
    assert account.status == AccountStatus.PAID_OFF and account.overpayment == 6100


# Idempotence, receipts -------------------------------------------------------------------


def test_recording_the_same_receipt_twice_credits_once(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    first, _ = pay(session, gateway, boxes, account, 10000, reference="RCPT1")
    again = record_manual_payment(
        session=session,
        keys=gateway.keys,
        texts=gateway.texts,
        account=account,
        amount=10000,
        actor="test",
        now=NOW,
        reference="RCPT1",
    )
    session.commit()
    assert again.already_credited and again.quote.days == 2
    assert [t.id for t in again.tokens] == [t.id for t in first]
    session.refresh(account)
    assert account.total_paid == 10000
    assert len(session.exec(select(OutboundMessage)).all()) == 1


def test_receipt_is_in_the_customers_language_and_fits_one_sms(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    for language, words in (("en", "Token:"), ("sw", "Tokeni:"), ("fr", "Code:")):
        account = make_account(
            session, gateway, language=language, plan=make_plan(session, price_per_day=5000)
        )
        session.commit()
        tokens, _ = pay(session, gateway, boxes, account, 50000)
        body = last_sms(session, account)
        assert words in body and format_code(tokens[0].code) in body
        assert sms.fits(body), body


def _receipt_cases() -> list[tuple[str, list[Token], dict[str, object]]]:
    restricted = [
        Token(device_id=1, count=2 * i, type=TokenKind.ADD_TIME, code="1234" * 3 + "123")
        for i in range(1, 4)
    ]
    extended = [Token(device_id=1, count=2, type=TokenKind.ADD_TIME, code="4" * 20)]
    disable = [Token(device_id=1, count=3, type=TokenKind.DISABLE_PAYG, code="3" * 15)]
    big = {"amount": 99_999_999_999, "counted": 99_999_999_999}
    return [
        ("three restricted codes", restricted, {**big, "steps": 2985, "days": 2985.0}),
        ("one restricted extended code", extended, {**big, "steps": 9999, "days": 9999.0}),
        (
            "paid off with a refund",
            disable,
            {**big, "pays_off": True, "overpayment": 99_999_999_999},
        ),
        ("below the minimum", [], {**big, "below_minimum": True, "minimum": 99_999_999_999}),
        ("deposit left", [], {**big, "deposit_left": 99_999_999_999}),
    ]


@pytest.mark.parametrize("language", ["en", "sw", "fr"])
def test_receipts_with_long_codes_or_amounts_fit_one_sms_and_never_cut_a_code(
    language: str,
) -> None:
    for what, tokens, fields in _receipt_cases():
        q = quote_with(**fields)
        body = render_receipt(
            texts=shipped(),
            language=language,
            account_number="10000004",
            quote=q,
            tokens=tokens,
            timezone="Africa/Nairobi",
        )
        assert sms.fits(body), (what, len(body), body)
        assert all(format_code(t.code) in body for t in tokens), (what, body)
    many = [
        Token(device_id=1, count=2 * i, type=TokenKind.ADD_TIME, code="1234" * 3 + "123")
        for i in range(1, 12)
    ]
    body = render_receipt(
        texts=shipped(),
        language=language,
        account_number="10000004",
        tokens=many,
        quote=quote_with(steps=995 * 11, days=995.0 * 11),
        timezone="Africa/Nairobi",
    )
    assert all(format_code(t.code) in body for t in many) and sms.parts(body) > 1


def quote_with(**fields: object) -> Quote:
    values: dict[str, object] = {
        "amount": 100,
        "currency": "KES",
        "counted": 100,
        "overpayment": 0,
        "deposit_part": 0,
        "deposit_left": 0,
        "activates": False,
        "below_minimum": False,
        "steps": 0,
        "days": 0.0,
        "remainder_after": 0,
        "pays_off": False,
        "credit_until": NOW + timedelta(days=3650),
        "minimum": 0,
    }
    values.update(fields)
    return Quote(**values)  # type: ignore[arg-type]


# Payments that must not be credited -----------------------------------------------------


def test_a_payment_in_another_currency_goes_to_an_operator_and_changes_nothing(
    session: Session, gateway: Gateway
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    payment = mobile_payment(session, gateway, account, 10000, currency="UGX")
    assert payment.status == PaymentStatus.UNMATCHED
    assert payment.status_reason is not None and "UGX" in payment.status_reason
    session.refresh(account)
    assert account.total_paid == 0 and session.exec(select(Token)).all() == []


@pytest.mark.parametrize("status", [AccountStatus.REPOSSESSED, AccountStatus.CLOSED])
def test_a_payment_to_a_repossessed_or_closed_account_issues_no_code(
    session: Session, gateway: Gateway, status: AccountStatus
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    account.status = status
    session.add(account)
    session.commit()
    payment = mobile_payment(session, gateway, account, 10000)
    assert payment.status == PaymentStatus.UNMATCHED
    assert payment.status_reason is not None and str(status) in payment.status_reason
    with pytest.raises(PaymentError, match=str(status)):
        record_manual_payment(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            account=account,
            amount=10000,
            actor="cashier",
            now=NOW,
        )
    session.rollback()
    assert session.exec(select(Token)).all() == []
    device = session.get(Device, account.device_id)
    assert device is not None and device.token_count == 0


def test_a_payment_to_the_old_account_of_a_box_sold_again_issues_no_code(
    session: Session, gateway: Gateway
) -> None:
    old = plan_and_account(session, gateway, price_per_day=5000)
    device = session.get(Device, old.device_id)
    assert device is not None
    device.status = DeviceStatus.REPOSSESSED  # taken back, the old account left open
    session.add(device)
    new = make_account(session, gateway, device=device)
    session.commit()
    payment = mobile_payment(session, gateway, old, 10000)
    assert payment.status == PaymentStatus.UNMATCHED
    assert payment.status_reason is not None and new.number in payment.status_reason
    assert session.exec(select(Token)).all() == []


def test_a_payment_without_a_positive_amount_goes_to_an_operator(
    session: Session, gateway: Gateway
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    payment = mobile_payment(session, gateway, account, 0)
    assert payment.status == PaymentStatus.UNMATCHED
    assert payment.status_reason is not None and "positive" in payment.status_reason
    assert session.exec(select(Token)).all() == []


def test_mobile_money_credits_record_what_was_done_for_a_reversal(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000)
    payment = mobile_payment(session, gateway, account, 12000)
    manual = record_manual_payment(
        session=session,
        keys=gateway.keys,
        texts=gateway.texts,
        account=account,
        amount=12000,
        actor="cashier",
        now=NOW,
    )
    session.commit()
    boxes.type([*session.exec(select(Token).where(Token.payment_id == payment.id)), *manual.tokens])
    credited = session.exec(
        select(AuditLog).where(AuditLog.action == "payment.credited").order_by(col(AuditLog.id))
    ).all()
    assert [a.target_id for a in credited] == [str(payment.id), str(manual.payment_id)]
    assert boxes.keypad(account.device_id).days_left == 4


# The account view ------------------------------------------------------------------------


def test_account_view_shows_credit_state(session: Session, gateway: Gateway, boxes: Boxes) -> None:
    account = plan_and_account(session, gateway, price_per_day=5000, total_price=200000)
    _, account = pay(session, gateway, boxes, account, 52000)
    view = account_view(session=session, account=account, now=NOW + timedelta(days=4))
    assert view["days_left"] == 6.0 and view["total_paid"] == 52000
    assert view["left_to_pay"] == 148000 and view["remainder"] == 2000
    assert view["credit_until"] == NOW + timedelta(days=10) and view["tokens_issued"] == 1


def test_days_left_is_rounded_down_to_a_tenth_and_never_up(
    session: Session, gateway: Gateway
) -> None:
    account = plan_and_account(session, gateway)
    account.credit_until = NOW + timedelta(days=2, hours=23, minutes=59)
    assert account_view(session=session, account=account, now=NOW)["days_left"] == 2.9
    account.credit_until = NOW + timedelta(hours=7, minutes=12)  # exactly 0.3 days
    assert days_left_shown(account, NOW) == 0.3
    assert days_left_shown(account, NOW + timedelta(seconds=1)) == 0.2
    account.credit_until = NOW - timedelta(days=1)
    assert account_view(session=session, account=account, now=NOW)["days_left"] == 0.0
