"""Issuing tokens: counts advance atomically, every code is stored, nothing is reused."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import create_app
from app.credit import account_view
from app.extensions import Gateway
from app.models import Account, AuditLog, Device, Token
from app.tokens.codec import TokenKind
from app.tokens.issue import issue_token, recent_tokens
from app.tokens.operator import operator_token, record_manual_payment
from tests.conftest import TEST_SETTINGS
from tests.factories import make_account, make_device, make_plan
from tests.keypads import keypad_for

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _issue_one(gateway: Gateway, device_id: int, reason: str) -> None:
    with gateway.db.transaction() as session:
        issue_token(session=session, keys=gateway.keys, device_id=device_id,
                    kind=TokenKind.ADD_TIME, steps=1, reason=reason)


def _issue_in_process(database_url: str, device_id: int, n: int, tag: str) -> None:
    app = create_app({**TEST_SETTINGS, "database_url": database_url})
    gateway: Gateway = app.extensions["paygo"]
    for i in range(n):
        _issue_one(gateway, device_id, f"{tag}-{i}")
    gateway.db.dispose()


def _stored_tokens(session: Session, device_id: int) -> list[Token]:
    session.expire_all()
    return list(session.exec(select(Token).where(Token.device_id == device_id)
                             .order_by(col(Token.count))))


def test_concurrent_threads_get_distinct_counts_the_box_accepts(session: Session,
                                                                gateway: Gateway) -> None:
    device = make_device(session, gateway)
    session.commit()
    threads = [threading.Thread(target=lambda i=i: [_issue_one(gateway, device.id or 0,
                                                               f"t{i}") for _ in range(5)])
               for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tokens = _stored_tokens(session, device.id or 0)
    assert [t.count for t in tokens] == list(range(2, 62, 2))
    keypad = keypad_for(device, gateway.keys)
    assert all(keypad.enter(t.code).accepted for t in tokens)


def test_concurrent_processes_get_distinct_counts(session: Session, gateway: Gateway,
                                                  database_url: str) -> None:
    device = make_device(session, gateway)
    session.commit()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_issue_in_process,
                           args=(database_url, device.id, 6, f"p{i}")) for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    tokens = _stored_tokens(session, device.id or 0)
    assert [t.count for t in tokens] == list(range(2, 38, 2))
    assert len({t.code for t in tokens}) == 18


def test_the_database_refuses_two_tokens_on_one_count(session: Session,
                                                      gateway: Gateway) -> None:
    device = make_device(session, gateway)
    session.commit()
    _issue_one(gateway, device.id or 0, "first")
    stored = _stored_tokens(session, device.id or 0)[0]
    session.add(Token(device_id=device.id or 0, count=stored.count, type=TokenKind.ADD_TIME,
                      code="000000000", value_raw=1, days=1))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_a_second_code_from_the_same_count_is_rejected_by_the_box(session: Session,
                                                                  gateway: Gateway) -> None:
    """Why the count must advance atomically: a reused count is a rejected code."""
    from app.tokens import codec
    from app.tokens.issue import device_params

    device = make_device(session, gateway)
    session.commit()
    params = device_params(gateway.keys, device)
    _, first = codec.generate(params, kind=TokenKind.ADD_TIME, value_raw=3, current_count=0)
    _, second = codec.generate(params, kind=TokenKind.ADD_TIME, value_raw=5, current_count=0)
    keypad = keypad_for(device, gateway.keys)
    assert keypad.enter(first).accepted
    assert not keypad.enter(second).accepted


def test_older_add_time_codes_are_accepted_in_any_order_the_standard_allows(
        session: Session, gateway: Gateway) -> None:
    device = make_device(session, gateway)
    session.commit()
    for i in range(8):
        _issue_one(gateway, device.id or 0, f"r{i}")
    *older, newest = _stored_tokens(session, device.id or 0)
    random.Random(7).shuffle(older)
    tokens = [newest, *older]  # the newest first, then the older ones in any order
    keypad = keypad_for(device, gateway.keys)
    assert all(keypad.enter(t.code).accepted for t in tokens)
    assert keypad.days_left == 8
    assert not any(keypad.enter(t.code).accepted for t in tokens)  # each once only


def test_resending_returns_the_stored_code_and_burns_no_count(session: Session,
                                                              gateway: Gateway) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=1000))
    session.commit()
    result = record_manual_payment(session=session, keys=gateway.keys, account=account,
                                   amount=5000, actor="t", now=NOW)
    session.commit()
    device = session.get(Device, account.device_id)
    assert device is not None
    count_before = device.token_count
    again = recent_tokens(session=session, device_id=device.id or 0, limit=1)
    session.refresh(device)
    assert again[0].code == result.tokens[0].code and device.token_count == count_before


def test_drift_warning_names_the_recovery_when_unentered_tokens_pile_up(
        session: Session, gateway: Gateway) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=100))
    session.commit()
    for i in range(20):
        _issue_one(gateway, account.device_id, f"d{i}")
    session.expire_all()
    view = account_view(session=session, account=account, now=NOW, drift_warning=40)
    assert view["warnings"] and "--type set" in view["warnings"][0]
    quiet = account_view(session=session, account=account, now=NOW, drift_warning=41)
    assert quiet["warnings"] == []


def test_set_time_recovery_carries_the_servers_remaining_days(session: Session,
                                                              gateway: Gateway) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=1000))
    session.commit()
    record_manual_payment(session=session, keys=gateway.keys, account=account, amount=10000,
                          actor="t", now=NOW)
    session.commit()
    tokens = operator_token(session=session, keys=gateway.keys, account=account,
                            kind=TokenKind.SET_TIME, reason="box lost count", actor="ops",
                            now=NOW + timedelta(days=3, hours=1))
    session.commit()
    assert tokens[0].type == TokenKind.SET_TIME and tokens[0].days == 7
    device = session.get(Device, account.device_id)
    assert device is not None
    keypad = keypad_for(device, gateway.keys)
    result = keypad.enter(tokens[0].code)  # the box never saw the payment token
    assert result.accepted and keypad.days_left == 7


def test_operator_moves_a_box_out_of_payg_and_back_in_audited(session: Session,
                                                              gateway: Gateway) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=1000))
    session.commit()
    out = operator_token(session=session, keys=gateway.keys, account=account,
                         kind=TokenKind.DISABLE_PAYG, reason="loan forgiven", actor="ops",
                         now=NOW)
    back = operator_token(session=session, keys=gateway.keys, account=account,
                          kind=TokenKind.SET_TIME, days=5, reason="sold again", actor="ops",
                          now=NOW)
    session.commit()
    refreshed = session.get(Account, account.id)
    assert refreshed is not None and refreshed.status == "active"
    device = session.get(Device, account.device_id)
    assert device is not None
    keypad = keypad_for(device, gateway.keys)
    keypad.enter(out[0].code)
    assert keypad.payg_enabled is False
    keypad.enter(back[0].code)
    assert keypad.payg_enabled is True and keypad.days_left == 5
    audit = session.exec(select(AuditLog).order_by(col(AuditLog.id))).all()
    assert [(a.action, json.loads(a.detail)["reason"], a.actor) for a in audit] == [
        ("token.disable_payg", "loan forgiven", "ops"), ("token.set_time", "sold again", "ops")]


def test_cli_records_a_cash_payment_and_prints_the_token(app: Flask, session: Session,
                                                         gateway: Gateway,
                                                         runner: FlaskCliRunner) -> None:
    from app.cli.tokens import record_payment

    account = make_account(session, gateway, plan=make_plan(session, price_per_day=5000))
    session.commit()
    result = runner.invoke(record_payment, [account.number, "150", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["days"] == 3 and data["count"] == 2 and len(data["token"]) == 9
    listed = runner.invoke(args=["tokens", "list", account.number, "--json"])
    assert json.loads(listed.output)["tokens"][0]["token"] == data["token"]
    shown = json.loads(runner.invoke(args=["accounts", "show", account.number,
                                           "--json"]).output)
    assert shown["total_paid"] == 15000 and shown["days_left"] >= 2.9


def test_cli_issues_an_operator_token_and_requires_a_reason(session: Session,
                                                            gateway: Gateway,
                                                            runner: FlaskCliRunner) -> None:
    account = make_account(session, gateway)
    session.commit()
    missing = runner.invoke(args=["tokens", "issue", account.number, "--type", "add",
                                  "--days", "3"])
    assert missing.exit_code != 0 and "--reason" in missing.output
    ok = runner.invoke(args=["tokens", "issue", account.number, "--type", "add", "--days", "3",
                             "--reason", "goodwill", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["days"] == 3
    bad = runner.invoke(args=["tokens", "issue", "99999999", "--type", "sync", "--reason", "x"])
    assert bad.exit_code == 1 and "no account" in bad.output
