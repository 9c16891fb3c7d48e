"""The whole loop for a connected box: a customer pays, the box fetches its codes and lights.

Payments come in as Daraja confirmations; the box is the reference library's request
handler with the project's keypad simulator typing the codes of each answer's `tkl`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from paygo.cli.views import account_view
from paygo.gateway import Gateway
from paygo.models import Account, Device, OutboundMessage, Token
from paygo.tokens.codec import format_code
from paygo.tokens.keypad import KeypadStatus
from tests.factories import make_account, make_plan
from tests.metrics_box import ConnectedBox
from tests.payment_helpers import MpesaPaybill, fresh, release

KEY = "bc41ec9530f6dac86b1a29ab82edc5fb"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    # A low drift threshold, so the warning a connected box's reports clear is visible.
    return make_app(token_drift_warning=10)


@pytest.fixture
def account(session: Session, gateway: Gateway) -> Account:
    plan = make_plan(session, price_per_day=5000)  # 50 KES a day
    account = make_account(session, gateway, plan=plan)
    session.commit()
    return account


@pytest.fixture
def box(client: FlaskClient, session: Session, gateway: Gateway, account: Account) -> ConnectedBox:
    device = session.get(Device, account.device_id)
    assert device is not None
    release(session)  # on SQLite, a read left open would keep seeing this moment
    return ConnectedBox.of(client, device, gateway.keys)


def _tokens(session: Session, account: Account) -> list[Token]:
    found = list(
        session.exec(select(Token).where(Token.account_id == account.id).order_by(col(Token.count)))
    )
    release(session)
    return found


def _receipts(session: Session, account: Account) -> list[OutboundMessage]:
    found = list(
        session.exec(select(OutboundMessage).where(OutboundMessage.account_id == account.id))
    )
    release(session)
    return found


def test_a_box_offline_for_10_payments_fetches_10_codes_and_ends_with_the_right_days(
    client: FlaskClient,
    session: Session,
    gateway: Gateway,
    shared_dir: Path,
    account: Account,
    box: ConnectedBox,
) -> None:
    paybill = MpesaPaybill(client, shared_dir)
    for days in range(1, 11):
        assert paybill.pay(account.number, str(50 * days)).status_code == 200
    tokens = _tokens(session, account)
    assert len(tokens) == 10 and len(_receipts(session, account)) == 10  # SMS went out too
    view = account_view(
        session=session,
        account=fresh(session, Account, account.id),
        now=datetime.now(UTC),
        drift_warning=10,
    )
    assert view["warnings"]  # 20 counts ahead of the count known on the box
    release(session)

    answer = box.report()
    assert answer["tkl"] == [int(t.code) for t in tokens]  # oldest first
    results = box.apply(answer)
    assert [r.status for r in results] == [KeypadStatus.ACCEPTED] * 10
    assert box.keypad is not None and box.keypad.days_left == sum(range(1, 11))

    assert box.report()["tkl"] == []
    device = fresh(session, Device, account.device_id)
    assert device.entered_count == device.token_count == box.keypad.count
    view = account_view(
        session=session,
        account=fresh(session, Account, account.id),
        now=datetime.now(UTC),
        drift_warning=10,
    )
    assert view["warnings"] == [] and view["counts_ahead"] == 0
    credit_until = fresh(session, Account, account.id).credit_until
    assert credit_until - datetime.now(UTC) > timedelta(days=54, hours=23)


def test_a_box_that_types_the_sms_code_and_fetches_it_too_ends_with_the_right_days(
    client: FlaskClient,
    session: Session,
    shared_dir: Path,
    account: Account,
    box: ConnectedBox,
) -> None:
    paybill = MpesaPaybill(client, shared_dir)
    assert box.report()["tkl"] == []  # the box is connected before anyone pays
    assert paybill.pay(account.number, "150").status_code == 200
    [token] = _tokens(session, account)
    [receipt] = _receipts(session, account)
    assert format_code(token.code) in receipt.body  # the SMS still goes: it may be offline

    # The box asked before the customer typed the SMS; the answer arrives after.
    answer = box.report()
    assert answer["tkl"] == [int(token.code)]
    assert box.keypad is not None
    assert box.keypad.enter(token.code).accepted
    assert [r.status for r in box.apply(answer)] == [KeypadStatus.ALREADY_USED]
    assert box.keypad.days_left == 3

    # The other way round: the box fetches the next code first, then the customer types it.
    assert paybill.pay(account.number, "100").status_code == 200
    answer = box.report()
    [second] = [t for t in _tokens(session, account) if t.count > token.count]
    assert answer["tkl"] == [int(second.code)]
    assert [r.status for r in box.apply(answer)] == [KeypadStatus.ACCEPTED]
    assert box.keypad.enter(second.code).status is KeypadStatus.ALREADY_USED
    assert box.keypad.days_left == 5
    assert box.report()["tkl"] == []


def test_a_connected_box_asking_for_its_active_time_gets_what_payments_bought(
    client: FlaskClient, session: Session, shared_dir: Path, account: Account, box: ConnectedBox
) -> None:
    assert box.report({"autsr": True})["auts"] == 0
    assert MpesaPaybill(client, shared_dir).pay(account.number, "350").status_code == 200
    until = fresh(session, Account, account.id).credit_until
    assert box.report({"autsr": True})["auts"] == int(until.timestamp())
    left = box.report({"aslr": True})["asl"]
    assert timedelta(days=7) - timedelta(minutes=5) < timedelta(seconds=left) <= timedelta(days=7)
