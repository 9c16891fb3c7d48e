"""Drains: the acks queue one job for many payments; drains share them and send receipts."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, col, select

from paygo import audit
from paygo.cli.worker import make_worker
from paygo.gateway import Gateway
from paygo.messaging import sending
from paygo.models import (
    AuditLog,
    MessageStatus,
    OutboundMessage,
    Payment,
    PaymentStatus,
    Token,
    utcnow,
)
from paygo.payments import reconcile, tasks
from tests.factories import make_account
from tests.payment_helpers import MpesaPaybill, count, fresh, payments, release
from tests.queue_helpers import rq_queue
from tests.test_payments_crash import run_child

RUN_DRAIN = """
from paygo import create_app
from paygo.payments.tasks import drain
app = create_app()
with app.app_context():
    drain(app.extensions["paygo"], seconds=60)
"""


def queued_functions(gateway: Gateway) -> list[object]:
    return [job.func for job in rq_queue(gateway).jobs]


def pay_each(
    app: Flask,
    session: Session,
    gateway: Gateway,
    shared_dir: Path,
    accounts: int,
    *,
    prefix: str = "DRAIN",
) -> None:
    paybill = MpesaPaybill(app.test_client(), shared_dir)
    for i in range(accounts):
        account = make_account(session, gateway, phone=f"+2547110{i:05d}")
        session.commit()
        reply = paybill.pay(account.number, receipt=f"{prefix}{i:05d}", phone=f"2547110{i:05d}")
        assert reply.get_json() == {"ResultCode": 0, "ResultDesc": "Accepted"}


def test_many_acks_queue_one_drain_that_credits_all_and_sends_each_receipt_itself(
    redis_app: Flask, session: Session, shared_dir: Path
) -> None:
    gateway: Gateway = redis_app.extensions["paygo"]
    pay_each(redis_app, session, gateway, shared_dir, 5)
    assert queued_functions(gateway) == [tasks.drain_payments]
    make_worker(redis_app).work(burst=True)
    release(session)
    assert [p.status for p in payments(session)] == [PaymentStatus.CREDITED] * 5
    statuses = session.exec(select(OutboundMessage.status, OutboundMessage.attempts)).all()
    assert sorted(statuses) == [(MessageStatus.SENT, 1)] * 5
    # The receipts went out from the drain itself: no send job was ever queued for them.
    assert rq_queue(gateway).finished_job_registry.count == 1


def test_a_payment_arriving_once_the_drain_has_started_queues_another(
    redis_app: Flask, session: Session, shared_dir: Path
) -> None:
    gateway: Gateway = redis_app.extensions["paygo"]
    pay_each(redis_app, session, gateway, shared_dir, 1)
    # The drain starts: it clears the flag before it looks for payments.
    gateway.backplane.delete(tasks.DRAIN_FLAG)
    pay_each(redis_app, session, gateway, shared_dir, 1, prefix="LATER")
    assert queued_functions(gateway) == [tasks.drain_payments, tasks.drain_payments]


def test_two_drains_at_once_each_take_different_payments(
    app: Flask, session: Session, gateway: Gateway, shared_dir: Path
) -> None:
    if gateway.db.dialect != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time")
    pay_each(app, session, gateway, shared_dir, 1)  # inline: credited on arrival
    numbers = [make_account(session, gateway, phone=f"+2547120{i:05d}").number for i in range(40)]
    session.commit()
    with gateway.db.transaction() as tx:  # these wait, as they would for a worker
        for i, number in enumerate(numbers):  # each to its own account and box
            tx.add(
                Payment(
                    provider="mpesa",
                    provider_txn_id=f"WAIT{i:05d}",
                    amount=15000,
                    currency="KES",
                    payer="254711000000",
                    reference=number,
                    raw="{}",
                )
            )
    done: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        with app.app_context():
            barrier.wait()
            done.append(tasks.drain(gateway, seconds=60)[0])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    release(session)
    assert sum(done) == 40 and min(done) > 0  # both did part of the work
    assert count(session, Payment, col(Payment.status) == PaymentStatus.CREDITED) == 41
    codes = session.exec(select(Token.device_id, Token.count)).all()
    assert len(codes) == len(set(codes)) == 41  # one code per box, none twice
    assert count(session, OutboundMessage, col(OutboundMessage.status) == "sent") == 41


def test_a_payment_that_fails_is_held_back_while_the_others_are_credited(
    redis_app: Flask, session: Session, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway: Gateway = redis_app.extensions["paygo"]
    pay_each(redis_app, session, gateway, shared_dir, 3)
    poison = payments(session)[1].id
    assert poison is not None
    real = reconcile.reconcile_payment
    attempts: list[int] = []

    def failing_for_one(**kwargs: Any) -> reconcile.Outcome:
        if kwargs["payment"].id == poison:
            attempts.append(poison)
            raise RuntimeError("a bug")
        return real(**kwargs)

    monkeypatch.setattr(tasks, "reconcile_payment", failing_for_one)
    with redis_app.app_context():
        assert tasks.drain(gateway, seconds=60) == (2, False)
        assert tasks.drain(gateway, seconds=60) == (0, False)  # held back: not tried again
    assert attempts == [poison]
    release(session)
    assert [p.status for p in payments(session)] == ["credited", "received", "credited"]
    # It was given a job of its own at once, which rq retries with backoff.
    assert poison is not None
    assert tasks.job_id(poison) in rq_queue(gateway).job_ids
    monkeypatch.setattr(tasks, "reconcile_payment", real)  # the fault heals
    make_worker(redis_app).work(burst=True)
    release(session)
    assert [p.status for p in payments(session)] == ["credited"] * 3


def test_a_drain_out_of_time_queues_another_behind_the_other_jobs(
    redis_app: Flask, session: Session, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway: Gateway = redis_app.extensions["paygo"]
    pay_each(redis_app, session, gateway, shared_dir, 2)
    rq_queue(gateway).empty()
    monkeypatch.setattr(tasks, "DRAIN_SECONDS", 0.0)
    with redis_app.app_context():
        assert tasks.drain_payments() == 0
    assert queued_functions(gateway) == [tasks.drain_payments]
    monkeypatch.setattr(tasks, "DRAIN_SECONDS", 60.0)
    make_worker(redis_app).work(burst=True)
    release(session)
    assert [p.status for p in payments(session)] == ["credited"] * 2


@pytest.mark.slow
def test_a_receipt_claimed_but_unsent_when_the_worker_died_is_sent_once_its_lease_ends(
    app: Flask, session: Session, gateway: Gateway, shared_dir: Path, tmp_path: Path
) -> None:
    account = make_account(session, gateway, phone="+254711000001")
    session.commit()
    with gateway.db.transaction() as tx:
        tx.add(
            Payment(
                provider="mpesa",
                provider_txn_id="DIED000001",
                amount=15000,
                currency="KES",
                payer="254711000001",
                reference=account.number,
                raw="{}",
            )
        )
    child = run_child(gateway, tmp_path, "claimed_unsent", RUN_DRAIN)
    assert child.returncode == 137, child.stderr
    release(session)
    [message] = session.exec(select(OutboundMessage)).all()
    assert (message.status, message.attempts) == (MessageStatus.SENDING, 1)
    assert [p.status for p in payments(session)] == ["credited"]
    assert message.next_attempt_at is not None
    with app.app_context():
        sending.sweep(gateway, now=utcnow())  # the lease holds: nothing happens
        release(session)
        assert fresh(session, OutboundMessage, message.id).status == MessageStatus.SENDING
    with gateway.db.transaction() as tx:  # time passes: the lease runs out
        held = tx.get(OutboundMessage, message.id)
        assert held is not None
        held.next_attempt_at = utcnow() - timedelta(seconds=1)
    with app.app_context():
        sending.sweep(gateway)
    settled = fresh(session, OutboundMessage, message.id)
    assert settled is not None and settled.status == MessageStatus.SENT
    assert settled.attempts == 2 and count(session, OutboundMessage) == 1


def test_a_payment_someone_else_held_when_the_drain_looked_is_looked_at_again(
    redis_app: Flask, session: Session, shared_dir: Path
) -> None:
    gateway: Gateway = redis_app.extensions["paygo"]
    if gateway.db.dialect != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    pay_each(redis_app, session, gateway, shared_dir, 1)
    [waiting] = payments(session)
    assert waiting.id is not None
    rq_queue(gateway).empty()
    with gateway.db.transaction() as operator:  # e.g. an operator assigning it, by hand
        operator.exec(select(Payment).where(Payment.id == waiting.id).with_for_update()).one()
        with redis_app.app_context():
            assert tasks.drain_payments() == 0  # skipped it: locked
    # ... and let it go without crediting it: a drain is scheduled to look again.
    [recheck] = rq_queue(gateway).scheduled_job_registry.get_job_ids()
    assert recheck.startswith("drain-payments-recheck")
    run_scheduled(gateway)
    make_worker(redis_app).work(burst=True)
    assert [p.status for p in payments(session)] == ["credited"]


def run_scheduled(gateway: Gateway) -> None:
    """Queue the scheduled jobs now, as rq's scheduler will once their time comes."""
    from rq.job import Job

    queue = rq_queue(gateway)
    registry = queue.scheduled_job_registry
    for ident in registry.get_job_ids():
        registry.remove(ident)
        queue.enqueue_job(Job.fetch(ident, connection=queue.connection))


def test_a_credit_that_fails_after_writing_its_receipt_sends_nothing(
    redis_app: Flask,
    session: Session,
    shared_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway: Gateway = redis_app.extensions["paygo"]
    pay_each(redis_app, session, gateway, shared_dir, 1)
    real = audit.record

    def failing(**kwargs: Any) -> AuditLog:
        if kwargs.get("action") == "payment.credited":  # written after the receipt
            raise RuntimeError("the audit table is full")
        return real(**kwargs)

    monkeypatch.setattr(audit, "record", failing)
    with caplog.at_level(logging.INFO, logger="paygo.sms"), redis_app.app_context():
        assert tasks.drain(gateway, seconds=60) == (0, False)
    assert [r for r in caplog.records if r.name == "paygo.sms"] == []  # no SMS went out
    assert count(session, OutboundMessage) == 0 and count(session, Token) == 0
    assert [p.status for p in payments(session)] == ["received"]
