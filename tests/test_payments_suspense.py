"""Operators and the suspense queue: list, assign, reverse, and sweep lost jobs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session, col, select

from paygo.gateway import Gateway
from paygo.models import (
    Account,
    AccountStatus,
    AuditLog,
    OutboundMessage,
    Payment,
    PaymentStatus,
    Token,
    utcnow,
)
from paygo.payments.intake import store_notice
from paygo.payments.manual import record_manual_payment
from paygo.payments.notice import NoticeStatus, PaymentNotice
from paygo.tokens.codec import TokenKind
from tests.factories import make_account, make_plan
from tests.payment_helpers import MpesaPaybill, count, fresh, payments, release


@pytest.fixture
def paybill(client: FlaskClient, shared_dir: Path) -> MpesaPaybill:
    return MpesaPaybill(client, shared_dir)


@pytest.fixture
def account(session: Session, gateway: Gateway) -> Account:
    made = make_account(session, gateway, phone="+254711000001")
    session.commit()
    return made


def cli(runner: FlaskCliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(args=["payments", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_unmatched_payments_are_listed_with_why(
    runner: FlaskCliRunner, paybill: MpesaPaybill, account: Account
) -> None:
    paybill.pay("SOLAR", phone="254799999999")
    [row] = cli(runner, "unmatched")["payments"]
    assert row["reference"] == "SOLAR" and row["status"] == "unmatched"
    assert "no account" in row["status_reason"] and "raw" not in row
    text = runner.invoke(args=["payments", "unmatched"]).output
    assert "SOLAR" in text and "KES 150" in text


def test_assigning_credits_exactly_once_like_a_match(
    runner: FlaskCliRunner, session: Session, paybill: MpesaPaybill, account: Account
) -> None:
    paybill.pay("SOLAR", phone="254799999999")
    [payment] = payments(session)
    done = cli(runner, "assign", str(payment.id), account.number, "--actor", "ops-alice")
    assert (done["status"], done["account_number"], done["rule"]) == (
        "credited",
        account.number,
        "operator",
    )
    assert count(session, Token, col(Token.payment_id) == payment.id) == 1
    assert count(session, OutboundMessage) == 1
    entry = session.exec(select(AuditLog).where(AuditLog.action == "payment.assigned")).one()
    release(session)
    assert entry.actor == "ops-alice"
    again = runner.invoke(args=["payments", "assign", str(payment.id), account.number])
    assert again.exit_code == 1 and "already credited" in again.output
    assert count(session, Token) == 1 and count(session, OutboundMessage) == 1
    assert cli(runner, "unmatched")["payments"] == []


def test_assigning_to_an_unknown_account_changes_nothing(
    runner: FlaskCliRunner, session: Session, paybill: MpesaPaybill, account: Account
) -> None:
    paybill.pay("SOLAR", phone="254799999999")
    [payment] = payments(session)
    result = runner.invoke(args=["payments", "assign", str(payment.id), "99999990"])
    assert result.exit_code == 1 and "no account" in result.output
    assert fresh(session, Payment, payment.id).status == PaymentStatus.UNMATCHED


def test_a_failed_payment_cannot_be_assigned(
    runner: FlaskCliRunner, session: Session, gateway: Gateway, account: Account
) -> None:
    with gateway.db.transaction() as s:
        stored = store_notice(
            session=s,
            now=utcnow(),
            raw="{}",
            notice=PaymentNotice(
                provider="mpesa",
                provider_txn_id="FAILED1",
                status=NoticeStatus.FAILED,
                amount="150",
                currency="KES",
                reason="1032 cancelled",
            ),
        )
    assert stored is not None
    result = runner.invoke(args=["payments", "assign", str(stored.payment_id), account.number])
    assert result.exit_code == 1 and "failed" in result.output
    assert count(session, Token) == 0


def test_reversal_moves_credit_back_and_sets_the_box(
    runner: FlaskCliRunner, session: Session, paybill: MpesaPaybill, account: Account
) -> None:
    paybill.pay(account.number)
    paybill.pay(account.number)
    first, second = payments(session)
    left = fresh(session, Account, account.id).credit_until - utcnow()
    assert timedelta(days=5, hours=23) < left <= timedelta(days=6)
    done = cli(
        runner,
        "reverse",
        str(second.id),
        "--reason",
        "customer charged twice",
        "--actor",
        "ops-bob",
    )
    after = fresh(session, Account, account.id)
    assert timedelta(days=2, hours=23) < after.credit_until - utcnow() <= timedelta(days=3)
    assert after.total_paid == 15000
    assert done["days_removed"] == 3
    [code] = done["tokens"]
    assert code["type"] == TokenKind.SET_TIME and code["days"] == 3
    reversed_ = fresh(session, Payment, second.id)
    assert reversed_.status == PaymentStatus.REVERSED and reversed_.reversed_at is not None
    entry = session.exec(select(AuditLog).where(AuditLog.action == "payment.reversed")).one()
    assert entry.actor == "ops-bob" and "charged twice" in entry.detail
    sms = session.exec(select(OutboundMessage).order_by(col(OutboundMessage.id).desc())).first()
    assert sms is not None and code["formatted"] in sms.body
    assert fresh(session, Payment, first.id).status == PaymentStatus.CREDITED


def test_reversal_gives_back_no_more_than_the_payment_left(
    runner: FlaskCliRunner, session: Session, paybill: MpesaPaybill, account: Account
) -> None:
    paybill.pay(account.number, "120")  # 2 days and KES 20 kept for later
    [payment] = payments(session)
    assert fresh(session, Account, account.id).remainder == 2000
    cli(runner, "reverse", str(payment.id), "--reason", "reversed by Safaricom")
    after = fresh(session, Account, account.id)
    assert (after.total_paid, after.remainder) == (0, 0)


def test_reversing_a_payment_that_bought_no_time_sends_the_box_nothing(
    runner: FlaskCliRunner, session: Session, paybill: MpesaPaybill, account: Account
) -> None:
    paybill.pay(account.number, "30")  # less than a day: kept as remainder, no code
    [payment] = payments(session)
    assert count(session, Token) == 0 and fresh(session, Account, account.id).remainder == 3000
    done = cli(runner, "reverse", str(payment.id), "--reason", "wrong PayBill")
    assert done["tokens"] == [] and done["days_removed"] == 0
    after = fresh(session, Account, account.id)
    assert (after.total_paid, after.remainder) == (0, 0)
    assert count(session, Token) == 0 and count(session, OutboundMessage) == 1  # the receipt


def test_reversing_the_paying_off_payment_puts_the_box_back_on_payg(
    runner: FlaskCliRunner, session: Session, gateway: Gateway, paybill: MpesaPaybill
) -> None:
    plan = make_plan(session, total_price=10000)
    account = make_account(session, gateway, plan=plan)
    session.commit()
    paybill.pay(account.number, "50")
    paybill.pay(account.number, "50")
    assert fresh(session, Account, account.id).status == AccountStatus.PAID_OFF
    last = payments(session)[-1]
    done = cli(runner, "reverse", str(last.id), "--reason", "bounced")
    after = fresh(session, Account, account.id)
    assert after.status == AccountStatus.ACTIVE and after.paid_off_at is None
    assert after.total_paid == 5000 and done["tokens"][0]["type"] == TokenKind.SET_TIME


def test_reversing_the_deposit_returns_the_account_to_pending(
    runner: FlaskCliRunner, session: Session, gateway: Gateway, paybill: MpesaPaybill
) -> None:
    plan = make_plan(session, deposit=100000, deposit_days=7)
    account = make_account(session, gateway, plan=plan)
    session.commit()
    paybill.pay(account.number, "1000")
    assert fresh(session, Account, account.id).status == AccountStatus.ACTIVE
    done = cli(runner, "reverse", str(payments(session)[0].id), "--reason", "fraud")
    after = fresh(session, Account, account.id)
    assert after.status == AccountStatus.PENDING_DEPOSIT and after.total_paid == 0
    assert done["days_removed"] == 7 and done["tokens"][0]["days"] == 0


def test_reversal_needs_a_credited_payment_and_a_reason(
    runner: FlaskCliRunner, session: Session, paybill: MpesaPaybill, account: Account
) -> None:
    paybill.pay("SOLAR", phone="254799999999")
    paybill.pay(account.number)
    unmatched, credited = payments(session)
    result = runner.invoke(args=["payments", "reverse", str(unmatched.id), "--reason", "x"])
    assert result.exit_code == 1 and "only credited payments" in result.output
    assert runner.invoke(args=["payments", "reverse", str(credited.id)]).exit_code == 2
    blank = runner.invoke(args=["payments", "reverse", str(credited.id), "--reason", " "])
    assert blank.exit_code == 1 and "reason" in blank.output
    cli(runner, "reverse", str(credited.id), "--reason", "duplicate")
    again = runner.invoke(args=["payments", "reverse", str(credited.id), "--reason", "x"])
    assert again.exit_code == 1 and "reversed" in again.output
    assert count(session, Token, col(Token.type) == TokenKind.SET_TIME) == 1


def test_sweep_reconciles_payments_whose_job_was_lost(
    runner: FlaskCliRunner, session: Session, gateway: Gateway, account: Account
) -> None:
    with gateway.db.transaction() as s:
        stored = store_notice(
            session=s,
            now=utcnow() - timedelta(minutes=5),
            raw="{}",
            notice=PaymentNotice(
                provider="mpesa",
                provider_txn_id="LOST1",
                status=NoticeStatus.PAID,
                amount="150",
                currency="KES",
                reference=account.number,
            ),
        )
    assert stored is not None
    assert cli(runner, "sweep") == {"requeued": 1}
    assert fresh(session, Payment, stored.payment_id).status == PaymentStatus.CREDITED
    assert cli(runner, "sweep") == {"requeued": 0}


def test_a_manually_recorded_payment_can_be_reversed_too(
    runner: FlaskCliRunner, session: Session, gateway: Gateway, account: Account
) -> None:
    with gateway.db.transaction() as s:
        held = s.get(Account, account.id)
        assert held is not None
        result = record_manual_payment(
            session=s,
            keys=gateway.keys,
            texts=gateway.texts,
            account=held,
            amount=15000,
            actor="cashier",
            now=utcnow(),
        )
    done = cli(runner, "reverse", str(result.payment_id), "--reason", "counterfeit notes")
    after = fresh(session, Account, account.id)
    assert after.total_paid == 0 and done["days_removed"] == 3
    assert after.credit_until is not None and after.credit_until <= utcnow() + timedelta(days=1)
