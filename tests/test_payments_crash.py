"""Exactly once across crashes: kill the process between steps, run again, count once.

A child process runs the real code with PAYGO_FAULT naming a point where app.faults kills
it (os._exit, as an OOM kill or a power cut would). The job is then run again here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask
from rq import Queue
from sqlmodel import Session, col, select

from paygo.cli.worker import make_worker
from paygo.gateway import Gateway
from paygo.models import Account, Device, OutboundMessage, Payment, PaymentStatus, Token, utcnow
from paygo.payments.intake import store_notice
from paygo.payments.notice import NoticeStatus, PaymentNotice
from paygo.payments.tasks import process_payment
from tests.conftest import TEST_SETTINGS
from tests.factories import make_account
from tests.payment_helpers import MpesaPaybill, count, fresh, payments
from tests.queue_helpers import rq_queue

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

RUN_JOB = """
import sys
from paygo import create_app
from paygo.payments.tasks import job_id, process_payment, sweep_payments
app = create_app()
with app.app_context():
    process_payment(int(sys.argv[1]))
"""

POST_CALLBACK = """
import json, sys
from paygo import create_app
app = create_app()
reply = app.test_client().post("/payments/mpesa/mpesa-token-123/confirmation",
                               json=json.loads(sys.argv[1]))
print(reply.status_code)
"""


RUN_WORKER = "from paygo.cli import main; main()"


def run_child(
    gateway: Gateway, tmp_path: Path, fault: str, script: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh interpreter on this test's database, dying at `fault`."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    if gateway.settings.redis_url:
        env["REDIS_URL"] = gateway.settings.redis_url
    env.update(
        DATABASE_URL=gateway.settings.database_url,
        PAYGO_ENV="test",
        PAYGO_MASTER_KEY=TEST_SETTINGS["master_key"],
        SECRET_KEY=TEST_SETTINGS["secret_key"],
        MPESA_CALLBACK_TOKEN=TEST_SETTINGS["mpesa_callback_token"],
        PAYGO_INSTANCE_PATH=str(tmp_path),
        PAYGO_FAULT=fault,
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def received_payment(gateway: Gateway, account: Account) -> int:
    with gateway.db.transaction() as session:
        stored = store_notice(
            session=session,
            now=utcnow(),
            raw="{}",
            notice=PaymentNotice(
                provider="mpesa",
                provider_txn_id="CRASH00001",
                status=NoticeStatus.PAID,
                amount="150",
                currency="KES",
                reference=account.number,
                payer="254711000001",
            ),
        )
    assert stored is not None
    return stored.payment_id


def totals(session: Session, payment_id: int) -> tuple[str, int, int, int, int]:
    """(payment status, its tokens, its messages, money credited, device count)."""
    # A first ADD_TIME code takes count 2 (ADD_TIME codes sit on even counts).
    payment = fresh(session, Payment, payment_id)
    tokens = count(session, Token, col(Token.payment_id) == payment_id)
    messages = count(
        session, OutboundMessage, col(OutboundMessage.dedupe_key) == f"payment:{payment_id}"
    )
    account = fresh(session, Account, session.exec(select(Account.id)).one())
    device = fresh(session, Device, account.device_id)
    return payment.status, tokens, messages, account.total_paid, device.token_count


@pytest.fixture
def account(session: Session, gateway: Gateway) -> Account:
    made = make_account(session, gateway, phone="+254711000001")
    session.commit()
    return made


@pytest.mark.parametrize("fault", ["after_credit", "after_token", "after_message"])
def test_worker_killed_mid_credit_leaves_nothing_and_a_rerun_credits_once(
    app: Flask, gateway: Gateway, session: Session, account: Account, tmp_path: Path, fault: str
) -> None:
    payment_id = received_payment(gateway, account)
    child = run_child(gateway, tmp_path, fault, RUN_JOB, str(payment_id))
    assert child.returncode == 137, child.stderr
    assert totals(session, payment_id) == ("received", 0, 0, 0, 0)
    for _ in range(2):
        with app.app_context():
            assert process_payment(payment_id) == "credited"
        assert totals(session, payment_id) == ("credited", 1, 1, 15000, 2)


def test_worker_killed_after_commit_is_not_credited_again(
    app: Flask, gateway: Gateway, session: Session, account: Account, tmp_path: Path
) -> None:
    payment_id = received_payment(gateway, account)
    child = run_child(gateway, tmp_path, "payment_committed", RUN_JOB, str(payment_id))
    assert child.returncode == 137, child.stderr
    assert totals(session, payment_id) == ("credited", 1, 1, 15000, 2)
    with app.app_context():
        process_payment(payment_id)
    assert totals(session, payment_id) == ("credited", 1, 1, 15000, 2)


def test_web_process_killed_before_acknowledging_is_retried_by_the_provider_once(
    app: Flask,
    gateway: Gateway,
    session: Session,
    account: Account,
    tmp_path: Path,
    shared_dir: Path,
) -> None:
    paybill = MpesaPaybill(app.test_client(), shared_dir)
    body = paybill.body(account.number, receipt="CRASH00002")
    child = run_child(gateway, tmp_path, "callback_stored", POST_CALLBACK, json.dumps(body))
    assert child.returncode == 137 and child.stdout == "", child.stderr
    [stored] = payments(session)
    assert stored.status == PaymentStatus.RECEIVED  # durable before any acknowledgement
    assert paybill.confirm(body).get_json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert totals(session, stored.id) == ("credited", 1, 1, 15000, 2)  # type: ignore[arg-type]


def test_rq_worker_killed_mid_drain_is_retried_by_rq_and_credits_once(
    redis_app: Flask, session: Session, tmp_path: Path, shared_dir: Path
) -> None:
    gateway: Gateway = redis_app.extensions["paygo"]
    made = make_account(session, gateway, phone="+254711000001")
    session.commit()
    paybill = MpesaPaybill(redis_app.test_client(), shared_dir)
    assert paybill.pay(made.number, receipt="CRASH00003").status_code == 200
    [stored] = payments(session)
    assert stored.id is not None and stored.status == PaymentStatus.RECEIVED
    queue = rq_queue(gateway)
    [drain] = queue.job_ids
    # The Procfile's worker dies mid-credit: the process itself when it runs jobs in
    # process (--no-fork), or the work horse it forked for the job.
    child = run_child(
        gateway,
        tmp_path,
        "after_token",
        RUN_WORKER,
        "worker",
        "--burst",
        "--no-fork",
        "--no-periodic",
    )
    assert child.returncode in (0, 137), child.stderr
    assert totals(session, stored.id) == ("received", 0, 0, 0, 0)
    # A dead worker's job stays "started" until its heartbeat lapses; rq's registry
    # cleanup then finds it abandoned and schedules its retry, as for a dead horse.
    queue.started_job_registry.cleanup(timestamp=time.time() + 3600)
    assert drain in queue.scheduled_job_registry
    # Meanwhile a copy of the callback arrives: the drain that died no longer holds the
    # wake-up flag, so a new drain is queued beside the retry. Both run; one credit.
    assert paybill.pay(made.number, receipt="CRASH00003").status_code == 200
    assert queue.count == 1
    run_due_retries(queue)
    make_worker(redis_app).work(burst=True)
    assert totals(session, stored.id) == ("credited", 1, 1, 15000, 2)
    with redis_app.app_context():
        assert process_payment(stored.id) == "credited"
    assert totals(session, stored.id) == ("credited", 1, 1, 15000, 2)


def run_due_retries(queue: Queue) -> None:
    """Queue the scheduled retries now, as rq's scheduler will once their backoff is over."""
    registry = queue.scheduled_job_registry
    for ident in registry.get_job_ids():
        job = queue.fetch_job(ident)
        assert job is not None
        registry.remove(job)
        queue.enqueue_job(job)
