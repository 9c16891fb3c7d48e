"""Issuing tokens: counts advance atomically, every code is stored, nothing is reused."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from paygo import create_app
from paygo.cli.views import account_view
from paygo.errors import Conflict, GatewayError, InvalidInput
from paygo.gateway import Gateway
from paygo.ledger.locks import hold_account
from paygo.ledger.operator import operator_token
from paygo.models import (
    Account,
    AccountStatus,
    AuditLog,
    Device,
    DeviceStatus,
    OutboundMessage,
    Payment,
    Token,
)
from paygo.payments.manual import record_manual_payment
from paygo.tokens import codec
from paygo.tokens.codec import TokenKind, format_code
from paygo.tokens.issue import device_params, issue_token, lock_device, recent_tokens
from paygo.tokens.keypad import KeypadStatus
from tests.conftest import TEST_SETTINGS
from tests.factories import make_account, make_device, make_plan
from tests.keypads import Boxes, keypad_for

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def boxes(session: Session, gateway: Gateway) -> Boxes:
    return Boxes(session, gateway.keys)


def _issue_one(gateway: Gateway, device_id: int, reason: str) -> None:
    with gateway.db.transaction() as session:
        issue_token(
            session=session,
            keys=gateway.keys,
            device=lock_device(session=session, device_id=device_id),
            kind=TokenKind.ADD_TIME,
            steps=1,
            reason=reason,
        )


def _pay_one(gateway: Gateway, account_id: int, amount: int) -> None:
    with gateway.db.transaction() as session:
        account = session.get(Account, account_id)
        assert account is not None
        record_manual_payment(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            account=account,
            amount=amount,
            actor="cashier",
            now=NOW,
        )


def _issue_in_process(database_url: str, device_id: int, n: int, tag: str) -> None:
    app = create_app({**TEST_SETTINGS, "database_url": database_url})
    gateway: Gateway = app.extensions["paygo"]
    for i in range(n):
        _issue_one(gateway, device_id, f"{tag}-{i}")
    gateway.db.dispose()


def _stored_tokens(session: Session, device_id: int) -> list[Token]:
    session.expire_all()
    return list(
        session.exec(select(Token).where(Token.device_id == device_id).order_by(col(Token.count)))
    )


def _operator(
    session: Session,
    gateway: Gateway,
    account: Account,
    kind: TokenKind,
    days: int | None = None,
    now: datetime = NOW,
    reason: str = "test",
) -> list[Token]:
    issued = operator_token(
        session=session,
        keys=gateway.keys,
        texts=gateway.texts,
        held=hold_account(session=session, account_id=account.id or 0),
        kind=kind,
        days=days,
        reason=reason,
        actor="ops",
        now=now,
    )
    session.commit()
    return issued.tokens


def _run_threads(targets: list[threading.Thread]) -> None:
    for thread in targets:
        thread.start()
    for thread in targets:
        thread.join()


# The count advances atomically -----------------------------------------------------------


def test_concurrent_threads_get_distinct_counts_the_box_accepts(
    session: Session, gateway: Gateway
) -> None:
    device = make_device(session, gateway)
    session.commit()

    def issue_five(tag: str) -> None:
        for _ in range(5):
            _issue_one(gateway, device.id or 0, tag)

    _run_threads([threading.Thread(target=issue_five, args=(f"t{i}",)) for i in range(6)])
    tokens = _stored_tokens(session, device.id or 0)
    assert [t.count for t in tokens] == list(range(2, 62, 2))
    keypad = keypad_for(device, gateway.keys)
    assert all(keypad.enter(t.code).accepted for t in tokens)


def test_concurrent_processes_get_distinct_counts_the_box_accepts(
    session: Session, gateway: Gateway, database_url: str
) -> None:
    device = make_device(session, gateway)
    session.commit()
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_issue_in_process, args=(database_url, device.id, 6, f"p{i}"))
        for i in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    tokens = _stored_tokens(session, device.id or 0)
    assert [t.count for t in tokens] == list(range(2, 38, 2))
    assert len({t.code for t in tokens}) == 18
    keypad = keypad_for(device, gateway.keys)
    assert all(keypad.enter(t.code).accepted for t in tokens) and keypad.days_left == 18


def test_concurrent_payments_to_one_account_each_get_their_own_count_and_days(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=1000))
    session.commit()

    def pay_three() -> None:
        for _ in range(3):
            _pay_one(gateway, account.id or 0, 1000)

    _run_threads([threading.Thread(target=pay_three) for _ in range(6)])
    tokens = _stored_tokens(session, account.device_id)
    assert [t.count for t in tokens] == list(range(2, 38, 2))
    assert len({t.payment_id for t in tokens}) == 18
    session.refresh(account)
    # No lost update: each payment extended the credit the one before it left.
    assert account.total_paid == 18000 and account.credit_until == NOW + timedelta(days=18)
    boxes.type(tokens)
    assert boxes.keypad(account.device_id).days_left == 18


def test_a_stale_copy_of_the_device_in_memory_never_reuses_a_count(
    session: Session, gateway: Gateway
) -> None:
    device = make_device(session, gateway)
    session.commit()
    stale = session.get(Device, device.id)
    assert stale is not None and stale.token_count == 0
    _issue_one(gateway, device.id or 0, "elsewhere")  # another transaction: count 2
    [token] = issue_token(
        session=session,
        keys=gateway.keys,
        device=lock_device(session=session, device_id=device.id or 0),
        kind=TokenKind.ADD_TIME,
        steps=1,
        reason="here",
    )
    session.commit()
    assert token.count == 4 and stale.token_count == 4


def test_the_database_refuses_two_tokens_on_one_count(session: Session, gateway: Gateway) -> None:
    device = make_device(session, gateway)
    session.commit()
    _issue_one(gateway, device.id or 0, "first")
    stored = _stored_tokens(session, device.id or 0)[0]
    session.add(
        Token(
            device_id=device.id or 0,
            count=stored.count,
            type=TokenKind.ADD_TIME,
            code="000000000",
            value_raw=1,
            days=1,
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_a_second_code_from_the_same_count_is_rejected_by_the_box(
    session: Session, gateway: Gateway
) -> None:
    """Why the count must advance atomically: a reused count is a rejected code."""
    device = make_device(session, gateway)
    session.commit()
    params = device_params(gateway.keys, device)
    _, first = codec.generate(params, kind=TokenKind.ADD_TIME, value_raw=3, current_count=0)
    _, second = codec.generate(params, kind=TokenKind.ADD_TIME, value_raw=5, current_count=0)
    keypad = keypad_for(device, gateway.keys)
    assert keypad.enter(first).accepted
    assert not keypad.enter(second).accepted


def test_older_add_time_codes_are_accepted_in_any_order_the_standard_allows(
    session: Session, gateway: Gateway
) -> None:
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


# Every token is stored with the count, before any message -------------------------------


def test_a_token_is_stored_with_its_payment_in_the_transaction_that_advances_the_count(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=1000))
    session.commit()
    account_id, device_id = account.id or 0, account.device_id
    with pytest.raises(RuntimeError), gateway.db.transaction() as s:
        held = s.get(Account, account_id)
        assert held is not None
        record_manual_payment(
            session=s,
            keys=gateway.keys,
            texts=gateway.texts,
            account=held,
            amount=5000,
            actor="cashier",
            now=NOW,
            reference="R1",
        )
        raise RuntimeError("the process dies before the commit")
    session.expire_all()
    device = session.get(Device, device_id)
    assert device is not None and device.token_count == 0
    for table in (Token, Payment, OutboundMessage):
        assert session.exec(select(table)).all() == []  # nothing half-done, nothing sent
    session.rollback()  # end this read before another connection writes
    _pay_one(gateway, account_id, 5000)
    [token] = _stored_tokens(session, device_id)
    payment = session.exec(select(Payment)).one()
    assert (
        token.device_id,
        token.count,
        token.type,
        token.value_raw,
        token.reason,
        token.payment_id,
        token.account_id,
    ) == (device_id, 2, TokenKind.ADD_TIME, 5, "payment", payment.id, account_id)
    message = session.exec(select(OutboundMessage)).one()
    assert format_code(token.code) in message.body and message.payment_id == payment.id
    boxes.type([token])


def test_resending_returns_the_stored_code_and_burns_no_count(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=1000))
    session.commit()
    result = record_manual_payment(
        session=session,
        keys=gateway.keys,
        texts=gateway.texts,
        account=account,
        amount=5000,
        actor="t",
        now=NOW,
    )
    session.commit()
    device = session.get(Device, account.device_id)
    assert device is not None
    count_before = device.token_count
    again = recent_tokens(session=session, device_id=device.id or 0, limit=1)
    session.refresh(device)
    assert again[0].code == result.tokens[0].code and device.token_count == count_before
    boxes.type(again)  # the resent code is the one the box has not taken yet
    assert boxes.keypad(account.device_id).days_left == 5


# Drift: the box rejects codes more than 64 counts past its own ---------------------------


def test_drift_warning_names_the_recovery_when_unentered_tokens_pile_up(
    session: Session, gateway: Gateway
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=100))
    session.commit()
    for i in range(20):
        _issue_one(gateway, account.device_id, f"d{i}")
    session.expire_all()
    view = account_view(session=session, account=account, now=NOW, drift_warning=40)
    assert view["counts_ahead"] == 40
    assert view["warnings"] and "--type set" in view["warnings"][0]
    assert f"paygo tokens entered {account.number}" in view["warnings"][0]
    quiet = account_view(session=session, account=account, now=NOW, drift_warning=41)
    assert quiet["warnings"] == []


def test_drift_warning_never_comes_later_than_a_set_time_can_still_reach_the_box(
    session: Session, gateway: Gateway
) -> None:
    account = make_account(session, gateway)
    session.commit()
    for i in range(31):
        _issue_one(gateway, account.device_id, f"d{i}")
    session.expire_all()
    view = account_view(session=session, account=account, now=NOW, drift_warning=500)
    assert view["counts_ahead"] == 62 and "--type set" in view["warnings"][0]
    [recovery] = _operator(session, gateway, account, TokenKind.SET_TIME, days=4)
    device = session.get(Device, account.device_id)
    assert device is not None
    keypad = keypad_for(device, gateway.keys)
    assert keypad.enter(recovery.code).accepted and keypad.days_left == 4


def test_set_time_recovery_carries_the_servers_remaining_days(
    session: Session, gateway: Gateway
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=1000))
    session.commit()
    record_manual_payment(
        session=session,
        keys=gateway.keys,
        texts=gateway.texts,
        account=account,
        amount=10000,
        actor="t",
        now=NOW,
    )
    session.commit()
    tokens = _operator(
        session,
        gateway,
        account,
        TokenKind.SET_TIME,
        reason="box lost count",
        now=NOW + timedelta(days=3, hours=1),
    )
    assert tokens[0].type == TokenKind.SET_TIME and tokens[0].days == 7
    device = session.get(Device, account.device_id)
    assert device is not None
    keypad = keypad_for(device, gateway.keys)
    # The payment code never reached the box (the SMS was lost): the recovery code alone
    # gives it the server's days.
    result = keypad.enter(tokens[0].code)
    assert result.accepted and keypad.days_left == 7


def test_set_time_recovery_is_as_precise_as_the_devices_time_divider(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    device = make_device(session, gateway, time_divider=24)  # hours
    account = make_account(
        session, gateway, device=device, plan=make_plan(session, price_per_day=2400)
    )
    session.commit()
    paid = record_manual_payment(
        session=session,
        keys=gateway.keys,
        texts=gateway.texts,
        account=account,
        amount=24000,
        actor="t",
        now=NOW,
    )
    session.commit()
    boxes.type(paid.tokens)
    later = NOW + timedelta(days=3, hours=1, seconds=20)  # 6 days 22 h 59 min 40 s left
    [token] = _operator(session, gateway, account, TokenKind.SET_TIME, now=later)
    assert token.value_raw == 6 * 24 + 23  # rounded up to the next hour, not the next day
    session.refresh(account)
    assert account.credit_until == later + timedelta(hours=167)
    boxes.type([token])
    assert boxes.keypad(account.device_id).days_left == 167 / 24


def test_a_box_too_far_behind_for_set_time_is_recovered_with_counter_sync(
    session: Session, gateway: Gateway
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=1000))
    session.commit()
    for _ in range(35):  # 35 daily codes the customer never typed: count 70
        record_manual_payment(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            account=account,
            amount=1000,
            actor="t",
            now=NOW,
        )
    session.commit()
    view = account_view(session=session, account=account, now=NOW)
    assert "--type sync" in view["warnings"][0]
    device = session.get(Device, account.device_id)
    assert device is not None
    keypad = keypad_for(device, gateway.keys)
    newest = recent_tokens(session=session, device_id=device.id or 0, limit=1)[0]
    assert keypad.enter(newest.code).status is KeypadStatus.INVALID  # out of the box's reach
    [sync] = _operator(session, gateway, account, TokenKind.COUNTER_SYNC, reason="drifted")
    [set_] = _operator(session, gateway, account, TokenKind.SET_TIME, reason="drifted")
    assert keypad.enter(sync.code).accepted and keypad.count == sync.count
    assert keypad.enter(set_.code).accepted and keypad.days_left == 35
    assert set_.days == 35


def test_a_box_out_of_reach_of_every_code_is_reported_for_a_technician(
    session: Session, gateway: Gateway
) -> None:
    device = make_device(session, gateway, extended=True)  # extended: sync reaches 64 too
    account = make_account(session, gateway, device=device)
    session.commit()
    for i in range(32):
        _issue_one(gateway, account.device_id, f"d{i}")
    session.expire_all()
    view = account_view(session=session, account=account, now=NOW)
    assert "technician" in view["warnings"][0] and "--type sync" not in view["warnings"][0]


# Operator tokens -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("divider", "restricted", "extended", "length"),
    [(1, False, False, 9), (4, True, False, 15), (1, False, True, 12), (24, True, True, 20)],
)
def test_operator_tokens_of_every_type_honour_divider_restricted_and_extended_modes(
    session: Session,
    gateway: Gateway,
    boxes: Boxes,
    divider: int,
    restricted: bool,
    extended: bool,
    length: int,
) -> None:
    device = make_device(
        session, gateway, time_divider=divider, restricted=restricted, extended=extended
    )
    account = make_account(session, gateway, device=device)
    session.commit()
    keypad = boxes.keypad(device.id or 0)
    steps = [
        (TokenKind.ADD_TIME, 3, 3.0, True),
        (TokenKind.SET_TIME, 2, 2.0, True),
        (TokenKind.COUNTER_SYNC, None, 2.0, True),
        (TokenKind.DISABLE_PAYG, None, 2.0, False),
        (TokenKind.SET_TIME, 1, 1.0, True),
    ]
    for kind, days, days_left, payg in steps:
        [token] = _operator(session, gateway, account, kind, days=days)
        assert len(token.code) == length and token.type == kind
        [result] = boxes.type([token])
        assert result.kind is kind
        assert (keypad.days_left, keypad.payg_enabled) == (days_left, payg)
    if restricted:
        assert set("".join(t.code for t in _stored_tokens(session, device.id or 0))) <= set("1234")


def test_set_time_over_995_days_on_a_standard_device_becomes_codes_the_box_adds_up(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    device = make_device(session, gateway, time_divider=4)
    account = make_account(session, gateway, device=device)
    session.commit()
    boxes.type(_operator(session, gateway, account, TokenKind.ADD_TIME, days=10))
    tokens = _operator(session, gateway, account, TokenKind.SET_TIME, days=600)
    assert [(t.type, t.value_raw) for t in tokens] == [
        (TokenKind.SET_TIME, 995),
        (TokenKind.ADD_TIME, 995),
        (TokenKind.ADD_TIME, 410),
    ]
    boxes.type(tokens)
    assert boxes.keypad(account.device_id).days_left == 600  # set, not added to the 10
    session.refresh(account)
    assert account.credit_until == NOW + timedelta(days=600)
    body = session.exec(select(OutboundMessage).order_by(col(OutboundMessage.id).desc())).first()
    assert body is not None and "in this order" in body.body


def test_an_extended_code_never_carries_the_values_a_box_reads_as_disable_or_sync(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    device = make_device(session, gateway, extended=True)
    account = make_account(session, gateway, device=device)
    session.commit()
    for days in (998, 999):
        tokens = _operator(session, gateway, account, TokenKind.SET_TIME, days=days)
        assert [t.value_raw for t in tokens] == [997, days - 997]
        boxes.type(tokens)
        keypad = boxes.keypad(account.device_id)
        assert keypad.payg_enabled and keypad.days_left == days


def test_operator_moves_a_box_out_of_payg_and_back_in_audited(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, price_per_day=1000))
    session.commit()
    out = _operator(session, gateway, account, TokenKind.DISABLE_PAYG, reason="loan forgiven")
    session.refresh(account)
    assert account.status == AccountStatus.PAID_OFF
    back = _operator(session, gateway, account, TokenKind.SET_TIME, days=5, reason="sold again")
    session.refresh(account)
    assert account.status == AccountStatus.ACTIVE and account.paid_off_at is None
    keypad = boxes.keypad(account.device_id)
    boxes.type(out)
    assert keypad.payg_enabled is False
    boxes.type(back)
    assert keypad.payg_enabled is True and keypad.days_left == 5
    audit = session.exec(select(AuditLog).order_by(col(AuditLog.id))).all()
    assert [(a.action, json.loads(a.detail)["reason"], a.actor) for a in audit] == [
        ("token.disable_payg", "loan forgiven", "ops"),
        ("token.set_time", "sold again", "ops"),
    ]


def test_after_disable_then_set_back_into_payg_payments_give_codes_the_box_takes(
    session: Session, gateway: Gateway, boxes: Boxes
) -> None:
    account = make_account(
        session,
        gateway,
        plan=make_plan(
            session, price_per_day=1000, deposit=5000, deposit_days=1, total_price=100000
        ),
    )
    session.commit()
    boxes.type(_operator(session, gateway, account, TokenKind.DISABLE_PAYG, reason="mistake"))
    boxes.type(_operator(session, gateway, account, TokenKind.SET_TIME, days=2, reason="undo"))
    session.refresh(account)
    assert account.status == AccountStatus.PENDING_DEPOSIT  # the deposit is still unpaid
    result = record_manual_payment(
        session=session,
        keys=gateway.keys,
        texts=gateway.texts,
        account=account,
        amount=8000,
        actor="cashier",
        now=NOW,
    )
    session.commit()
    boxes.type(result.tokens)
    session.refresh(account)
    device = session.get(Device, account.device_id)
    assert device is not None and device.status == DeviceStatus.ACTIVE
    assert account.status == AccountStatus.ACTIVE and result.quote.days == 4  # 3 + 1 deposit
    assert boxes.keypad(account.device_id).days_left == 6
    assert account.credit_until == NOW + timedelta(days=6)


@pytest.mark.parametrize(
    ("kind", "days", "error"),
    [
        (TokenKind.ADD_TIME, None, InvalidInput),
        (TokenKind.ADD_TIME, 0, InvalidInput),
        (TokenKind.SET_TIME, -1, InvalidInput),
        (TokenKind.DISABLE_PAYG, 3, InvalidInput),
        (TokenKind.COUNTER_SYNC, 3, InvalidInput),
    ],
)
def test_operator_tokens_refuse_what_a_box_cannot_use_and_spend_no_count(
    session: Session, gateway: Gateway, kind: TokenKind, days: int | None, error: type[GatewayError]
) -> None:
    account = make_account(session, gateway)
    session.commit()
    with pytest.raises(error):
        operator_token(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            held=hold_account(session=session, account_id=account.id or 0),
            kind=kind,
            days=days,
            reason="x",
            actor="ops",
            now=NOW,
        )
    session.rollback()
    with pytest.raises(InvalidInput, match="reason"):
        operator_token(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            held=hold_account(session=session, account_id=account.id or 0),
            kind=TokenKind.SET_TIME,
            days=1,
            reason="  ",
            actor="ops",
            now=NOW,
        )
    session.rollback()
    assert session.exec(select(Token)).all() == []


def test_add_time_on_a_box_out_of_payg_is_refused(session: Session, gateway: Gateway) -> None:
    account = make_account(session, gateway)
    session.commit()
    _operator(session, gateway, account, TokenKind.DISABLE_PAYG)
    with pytest.raises(Conflict, match="--type set"):
        _operator(session, gateway, account, TokenKind.ADD_TIME, days=3)
    session.rollback()
    assert len(session.exec(select(Token)).all()) == 1


@pytest.mark.parametrize("status", [AccountStatus.REPOSSESSED, AccountStatus.CLOSED])
def test_no_operator_code_goes_to_the_box_of_a_repossessed_or_closed_account(
    session: Session, gateway: Gateway, status: AccountStatus
) -> None:
    account = make_account(session, gateway)
    account.status = status
    session.add(account)
    session.commit()
    with pytest.raises(Conflict, match=str(status)):
        _operator(session, gateway, account, TokenKind.SET_TIME, days=3)
    session.rollback()
    assert session.exec(select(Token)).all() == []
