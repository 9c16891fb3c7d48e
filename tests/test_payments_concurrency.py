"""Twenty copies at the same moment: one payment row, one credit, every copy acknowledged."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlmodel import Session, col, select

from paygo.cli.worker import make_worker
from paygo.gateway import Gateway
from paygo.models import Account, OutboundMessage, Payment, PaymentStatus, Token
from paygo.payments.tasks import drain_payments
from tests.factories import make_account
from tests.payment_helpers import MpesaPaybill, count, ledger, payments, release
from tests.queue_helpers import rq_queue

COPIES = 20
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


def all_at_once(post: Callable[[int], Any], copies: int = COPIES) -> list[Any]:
    """Run `post(i)` on `copies` threads released together; return every result."""
    barrier = threading.Barrier(copies)
    results: list[Any] = [None] * copies

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = post(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def open_account(session: Session, gateway: Gateway) -> Account:
    account = make_account(session, gateway, phone="+254711000001")
    session.commit()
    return account


def test_twenty_simultaneous_copies_credit_once(
    app: Flask, session: Session, gateway: Gateway, shared_dir: Path
) -> None:
    account = open_account(session, gateway)
    body = MpesaPaybill(app.test_client(), shared_dir).body(account.number, receipt="SAME000001")

    def post(_: int) -> Any:
        return MpesaPaybill(app.test_client(), shared_dir).confirm(body).get_json()

    assert all_at_once(post) == [ACCEPTED] * COPIES
    [payment] = payments(session)
    assert payment.status == PaymentStatus.CREDITED
    assert ledger(session) | {"audit": 0} == {"payments": 1, "tokens": 1, "messages": 1, "audit": 0}


def test_simultaneous_payments_to_one_box_each_get_their_own_count(
    app: Flask, session: Session, gateway: Gateway, shared_dir: Path
) -> None:
    account = open_account(session, gateway)
    payers = COPIES

    def post(i: int) -> Any:
        return (
            MpesaPaybill(app.test_client(), shared_dir)
            .pay(account.number, receipt=f"DIFF{i:06d}")
            .get_json()
        )

    assert all_at_once(post, payers) == [ACCEPTED] * payers
    counts = session.exec(select(Token.count).where(Token.device_id == account.device_id)).all()
    release(session)
    assert len(counts) == len(set(counts)) == payers
    assert count(session, Payment, col(Payment.status) == PaymentStatus.CREDITED) == payers
    assert count(session, OutboundMessage) == payers


def test_copies_through_rq_are_acknowledged_then_credited_once_by_the_worker(
    redis_app: Flask, session: Session, shared_dir: Path
) -> None:
    gateway: Gateway = redis_app.extensions["paygo"]
    account = open_account(session, gateway)
    body = MpesaPaybill(redis_app.test_client(), shared_dir).body(
        account.number, receipt="RQ00000001"
    )

    def post(_: int) -> Any:
        return MpesaPaybill(redis_app.test_client(), shared_dir).confirm(body).get_json()

    assert all_at_once(post) == [ACCEPTED] * COPIES
    [payment] = payments(session)
    assert payment.status == PaymentStatus.RECEIVED  # acknowledged before any crediting
    assert payment.id is not None
    # One drain job is queued for all twenty copies (the first ack queued it).
    assert [j.func for j in rq_queue(gateway).jobs] == [drain_payments]
    make_worker(redis_app).work(burst=True)
    assert payments(session)[0].status == PaymentStatus.CREDITED
    assert count(session, Token) == 1 and count(session, OutboundMessage) == 1
