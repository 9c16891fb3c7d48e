"""Operator commands: `payments record`, `tokens issue|list|entered`, `accounts show`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import Session, col, select

from paygo.cli.payments import record_payment
from paygo.gateway import Gateway
from paygo.models import (
    Account,
    AccountStatus,
    AuditLog,
    Device,
    DeviceStatus,
    Payment,
    Token,
    utcnow,
)
from paygo.payments.manual import record_manual_payment
from paygo.tokens.codec import TokenKind, format_code
from paygo.tokens.keypad import Keypad
from tests.factories import make_account, make_device, make_plan
from tests.keypads import keypad_for


def run(runner: FlaskCliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(args=[*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def record(runner: FlaskCliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(record_payment, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def box(session: Session, gateway: Gateway, account: Account) -> Keypad:
    device = session.get(Device, account.device_id)
    assert device is not None
    keypad = keypad_for(device, gateway.keys)
    session.commit()  # end the read before the command writes from its own connection
    return keypad


def typed(keypad: Keypad, data: dict[str, Any]) -> None:
    """Type every code a command printed into the box; each must be accepted."""
    for token in data["tokens"]:
        assert keypad.enter(token["formatted"]).accepted, token


# paygo payments record -------------------------------------------------------------------


def test_payments_record_prints_the_token_code_and_the_days_it_gives(
    session: Session, gateway: Gateway, runner: FlaskCliRunner
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=5000))
    session.commit()
    keypad = box(session, gateway, account)
    data = record(runner, account.number, "150")
    assert data["days"] == 3 and data["count"] == 2 and len(data["token"]) == 9
    typed(keypad, data)
    human = runner.invoke(record_payment, [account.number, "1,020.50", "--reference", "C-9"])
    assert human.exit_code == 0, human.output
    token = session.exec(select(Token).order_by(col(Token.count).desc())).first()
    assert token is not None and format_code(token.code) in human.output
    assert "20 days, credit until" in human.output and "KES 20.50 kept" in human.output
    assert keypad.enter(token.code).accepted and keypad.days_left == 23


def test_payments_record_reports_deposit_minimum_pay_off_and_refund(
    session: Session, gateway: Gateway, runner: FlaskCliRunner
) -> None:
    account = make_account(
        session,
        gateway,
        plan=make_plan(
            session,
            price_per_day=5000,
            deposit=100000,
            deposit_days=7,
            min_payment=10000,
            total_price=200000,
        ),
    )
    session.commit()
    keypad = box(session, gateway, account)
    deposit = record(runner, account.number, "600")
    assert (deposit["token"], deposit["deposit_left"], deposit["days"]) == (None, 40000, 0)
    activation = record(runner, account.number, "400")
    assert activation["days"] == 7
    typed(keypad, activation)
    small = runner.invoke(record_payment, [account.number, "50"])
    assert "below the minimum of KES 100" in small.output
    payoff = record(runner, account.number, "1,200")
    assert payoff["pays_off"] and payoff["overpayment"] == 25000
    assert [t["type"] for t in payoff["tokens"]] == [TokenKind.DISABLE_PAYG]
    typed(keypad, payoff)
    assert keypad.payg_enabled is False
    after = runner.invoke(record_payment, [account.number, "10"])
    assert "already paid off" in after.output and "KES 10 overpaid, to refund" in after.output


def test_payments_record_twice_with_one_reference_credits_once(
    session: Session, gateway: Gateway, runner: FlaskCliRunner
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=5000))
    session.commit()
    first = record(runner, account.number, "100", "--reference", "RCPT-7")
    again = record(runner, account.number, "100", "--reference", "RCPT-7")
    assert again["already_credited"] and again["token"] == first["token"]
    assert again["days"] == first["days"] == 2
    assert len(session.exec(select(Payment)).all()) == 1
    other = make_account(session, gateway)
    session.commit()
    clash = runner.invoke(record_payment, [other.number, "100", "--reference", "RCPT-7"])
    assert clash.exit_code == 1 and "recorded already" in clash.output


@pytest.mark.parametrize("amount", ["abc", "-5", "0", "1.234", "1e3"])
def test_payments_record_refuses_a_bad_amount_and_stores_nothing(
    session: Session, gateway: Gateway, runner: FlaskCliRunner, amount: str
) -> None:
    account = make_account(session, gateway)
    session.commit()
    result = runner.invoke(record_payment, [account.number, amount])
    assert result.exit_code != 0 and "error" in result.output.lower()
    assert session.exec(select(Payment)).all() == []
    session.commit()
    unknown = runner.invoke(record_payment, ["99999999", "100"])
    assert unknown.exit_code == 1 and "no account" in unknown.output
    long_ref = runner.invoke(record_payment, [account.number, "100", "--reference", "R" * 81])
    assert long_ref.exit_code == 1 and "at most 80" in long_ref.output


def test_recording_one_receipt_from_several_tills_at_once_credits_it_once(
    session: Session, gateway: Gateway
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=5000))
    session.commit()
    errors: list[BaseException] = []

    def till() -> None:
        try:
            with gateway.db.transaction() as s:
                held = s.get(Account, account.id)
                assert held is not None
                record_manual_payment(
                    session=s,
                    keys=gateway.keys,
                    texts=gateway.texts,
                    account=held,
                    amount=10000,
                    actor="till",
                    now=utcnow(),
                    reference="SHARED-1",
                )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=till) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(session.exec(select(Payment)).all()) == 1
    tokens = session.exec(select(Token)).all()
    assert len(tokens) == 1
    keypad = box(session, gateway, account)
    assert keypad.enter(tokens[0].code).accepted and keypad.days_left == 2


def test_part_days_on_a_time_divider_box_are_shown_exactly(
    session: Session, gateway: Gateway, runner: FlaskCliRunner
) -> None:
    device = make_device(session, gateway, time_divider=4)
    account = make_account(
        session, gateway, device=device, plan=make_plan(session, price_per_day=4000)
    )
    session.commit()
    data = record(runner, account.number, "70")
    assert data["days"] == 1.75 and data["tokens"][0]["days"] == 1.75
    typed(box(session, gateway, account), data)
    assert run(runner, "tokens", "list", account.number)["tokens"][0]["days"] == 1.75
    listed = runner.invoke(args=["tokens", "list", account.number]).output
    assert "1.75 days" in listed


def test_payments_record_is_credited_through_the_mobile_money_path(
    session: Session, gateway: Gateway, runner: FlaskCliRunner
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=5000))
    session.commit()
    data = record(runner, account.number, "120", "--actor", "cashier-ann")
    typed(box(session, gateway, account), data)
    actions = [
        (a.action, a.actor) for a in session.exec(select(AuditLog).order_by(col(AuditLog.id)))
    ]
    assert actions == [("payment.record", "cashier-ann"), ("payment.credited", "cashier-ann")]
    payment = session.exec(select(Payment)).one()
    assert (payment.provider, payment.match_rule, payment.amount) == ("manual", "manual", 12000)


# paygo tokens issue / list -----------------------------------------------------------------


def test_tokens_issue_prints_a_code_the_box_takes_for_every_type(
    session: Session, gateway: Gateway, runner: FlaskCliRunner
) -> None:
    device = make_device(session, gateway, time_divider=2, restricted=True)
    account = make_account(session, gateway, device=device)
    session.commit()
    keypad = box(session, gateway, account)
    for kind, extra, days in (
        ("add", ["--days", "3"], 3.0),
        ("set", ["--days", "600"], 600.0),
        ("sync", [], 600.0),
        ("disable", [], 600.0),
    ):
        data = run(
            runner,
            "tokens",
            "issue",
            account.number,
            "--type",
            kind,
            *extra,
            "--reason",
            f"{kind} test",
        )
        assert data["token"] and data["count"] and len(data["token"]) == 15
        typed(keypad, data)
        assert keypad.days_left == days
    assert keypad.payg_enabled is False
    human = runner.invoke(
        args=[
            "tokens",
            "issue",
            account.number,
            "--type",
            "set",
            "--days",
            "2",
            "--reason",
            "back on PAYG",
        ]
    )
    assert human.exit_code == 0 and "(set_time, 2 days, count" in human.output


def test_tokens_issue_requires_a_reason_and_a_known_account(
    session: Session, gateway: Gateway, runner: FlaskCliRunner
) -> None:
    account = make_account(session, gateway)
    session.commit()
    missing = runner.invoke(
        args=["tokens", "issue", account.number, "--type", "add", "--days", "3"]
    )
    assert missing.exit_code != 0 and "--reason" in missing.output
    no_days = runner.invoke(
        args=["tokens", "issue", account.number, "--type", "add", "--reason", "goodwill"]
    )
    assert no_days.exit_code == 1 and "--days" in no_days.output
    data = run(
        runner,
        "tokens",
        "issue",
        account.number,
        "--type",
        "add",
        "--days",
        "3",
        "--reason",
        "goodwill",
    )
    assert data["days"] == 3
    typed(box(session, gateway, account), data)
    bad = runner.invoke(args=["tokens", "issue", "99999999", "--type", "sync", "--reason", "x"])
    assert bad.exit_code == 1 and "no account" in bad.output


def test_tokens_list_shows_the_accounts_codes_newest_first_not_a_previous_owners(
    session: Session, gateway: Gateway, runner: FlaskCliRunner
) -> None:
    old = make_account(session, gateway, plan=make_plan(session, price_per_day=5000))
    session.commit()
    assert "no tokens yet" in runner.invoke(args=["tokens", "list", old.number]).output
    keypad = box(session, gateway, old)
    typed(keypad, record(runner, old.number, "100"))
    old.status = AccountStatus.REPOSSESSED
    device = session.get(Device, old.device_id)
    assert device is not None
    device.status = DeviceStatus.REPOSSESSED
    session.add_all([old, device])
    new = make_account(session, gateway, device=device, plan=make_plan(session, price_per_day=5000))
    session.commit()
    first, second = record(runner, new.number, "50"), record(runner, new.number, "150")
    typed(keypad, first)
    typed(keypad, second)  # the same box: the count carries on from the old owner's
    listed = run(runner, "tokens", "list", new.number)["tokens"]
    assert [t["token"] for t in listed] == [second["token"], first["token"]]
    assert [t["days"] for t in listed] == [3, 1] and [t["count"] for t in listed] == [6, 4]
    assert [t["count"] for t in run(runner, "tokens", "list", old.number)["tokens"]] == [2]


# paygo accounts show / tokens entered -----------------------------------------------------


def test_accounts_show_gives_the_credit_state(
    session: Session, gateway: Gateway, runner: FlaskCliRunner
) -> None:
    account = make_account(
        session, gateway, plan=make_plan(session, price_per_day=5000, total_price=100000)
    )
    session.commit()
    typed(box(session, gateway, account), record(runner, account.number, "120"))
    shown = run(runner, "accounts", "show", account.number)
    assert (shown["total_paid"], shown["left_to_pay"], shown["remainder"]) == (12000, 88000, 2000)
    assert shown["credit_until"] and 1.9 <= shown["days_left"] <= 2.0
    human = runner.invoke(args=["accounts", "show", account.number]).output
    assert "left to pay: KES 880" in human and "remainder: KES 20" in human
    record(runner, account.number, "880")
    paid = runner.invoke(args=["accounts", "show", account.number]).output
    assert "the box stays on for good" in paid and "left to pay: KES 0" in paid


def test_tokens_entered_records_the_box_count_and_clears_the_drift_warning(
    session: Session, make_app: Callable[..., Flask]
) -> None:
    app = make_app(token_drift_warning=4)
    gateway: Gateway = app.extensions["paygo"]
    runner = app.test_cli_runner()
    with gateway.db.transaction() as s:
        number = make_account(s, gateway, plan=make_plan(s, price_per_day=5000)).number
    for _ in range(2):
        record(runner, number, "50")
    warned = run(runner, "accounts", "show", number)
    assert warned["counts_ahead"] == 4 and "tokens entered" in warned["warnings"][0]
    too_far = runner.invoke(args=["tokens", "entered", number, "--count", "9"])
    assert too_far.exit_code == 1 and "between 0 and 4" in too_far.output
    done = run(runner, "tokens", "entered", number, "--actor", "tech-joe")
    assert done["entered_count"] == 4
    assert run(runner, "accounts", "show", number)["warnings"] == []
    with gateway.db.session() as s:
        entry = s.exec(select(AuditLog).where(AuditLog.action == "device.count_confirmed")).one()
        assert entry.actor == "tech-joe"
