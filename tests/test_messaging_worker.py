"""Messaging on rq and Redis: job ids, retries on schedule, lost queues, killed workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from flask import Flask
from rq import Queue

from paygo.cli.worker import make_worker
from paygo.messaging import sending
from paygo.models import MessageStatus, OutboundMessage
from tests.conftest import TEST_SETTINGS
from tests.fakes.at_api import FakeAfricasTalking
from tests.fakes.twilio_api import FakeTwilio
from tests.messaging_helpers import KE, TZ, gateway_of, outbox, queue
from tests.queue_helpers import redis_of, rq_queue

ROOT = Path(__file__).resolve().parents[1]
FAST: dict[str, Any] = {
    "sms_timeout_seconds": 0.5,
    "sms_retry_base_seconds": 0.2,
    "sms_retry_max_seconds": 1.0,
    "sms_reconcile_after_seconds": 1.0,
    "sms_sweep_interval_seconds": 1.0,
}


@pytest.fixture
def rq_app(
    make_app: Callable[..., Flask], redis_url: str, redis_client: redis.Redis
) -> Callable[..., Flask]:
    """Build apps with jobs on this run's Redis database."""
    return lambda **settings: make_app(redis_url=redis_url, **settings)


def _work(app: Flask, *, scheduler: bool = False, periodic: bool = False) -> None:
    make_worker(app, periodic=periodic).work(
        burst=True, with_scheduler=scheduler, logging_level="WARNING"
    )


def test_each_committed_message_becomes_one_job_and_a_repeat_is_harmless(
    rq_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = rq_app(**at.settings(), **FAST)
    gateway = gateway_of(app)
    (message_id,) = queue(gateway, "token 123")
    assert at.accepted == []  # nothing is sent in the web process
    assert rq_queue(gateway).job_ids == [f"send-message-{message_id}-1"]
    sending.send_committed(gateway, [message_id])  # enqueued again while pending
    assert rq_queue(gateway).count == 1
    _work(app)
    sending.send_committed(gateway, [message_id])  # and again once done
    _work(app)
    assert at.bodies_to(KE) == ["token 123"]
    assert outbox(gateway)[0].status == MessageStatus.SENT


def test_a_transient_failure_is_retried_at_its_backoff_time(
    rq_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = rq_app(**at.settings(), **FAST)
    gateway = gateway_of(app)
    at.script(["down"])
    (message_id,) = queue(gateway, "retry me")
    _work(app)
    (message,) = outbox(gateway)
    assert message.status == MessageStatus.QUEUED and message.next_attempt_at is not None
    scheduled = rq_queue(gateway).scheduled_job_registry
    assert scheduled.get_job_ids() == [f"send-message-{message_id}-2"]
    time.sleep(1.3)  # past the backoff (0.2 s, jittered)
    _work(app, scheduler=True)  # the scheduler moves the due retry onto the queue
    assert at.bodies_to(KE) == ["retry me"]
    assert outbox(gateway)[0].attempts == 2


def test_redis_losing_its_queue_loses_no_message(
    rq_app: Callable[..., Flask], at: FakeAfricasTalking, redis_client: redis.Redis
) -> None:
    app = rq_app(**at.settings(), **FAST)
    gateway = gateway_of(app)
    bodies = [f"message {i}" for i in range(5)]
    queue(gateway, *bodies)
    # Redis restarted without persistence: this run's own database number is emptied.
    redis_client.flushdb()
    assert rq_queue(gateway).count == 0
    assert sending.sweep(gateway) == {"due": 5, "reconciling": 0}
    _work(app)
    assert sorted(at.bodies_to(KE)) == sorted(bodies)
    assert {m.status for m in outbox(gateway)} == {MessageStatus.SENT}


def test_the_worker_schedules_the_sweep_reminders_and_reconciliation(
    rq_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = rq_app(**at.settings(), **FAST)
    gateway = gateway_of(app)
    with gateway.db.transaction() as session:  # written without a job (as if Redis was down)
        session.add(OutboundMessage(recipient=KE, body="found by the sweep"))
    _work(app, scheduler=True, periodic=True)
    assert at.bodies_to(KE) == ["found by the sweep"]
    keys = cast(list[bytes], redis_of(gateway).keys("rq:cron_job:*:jobs"))  # not decoded
    history = {key.decode() for key in keys}
    assert history == {
        "rq:cron_job:messages-sweep:jobs",
        "rq:cron_job:messages-reminders:jobs",
        "rq:cron_job:payments-sweep:jobs",
    }


# -- a real `paygo worker` process ---------------------------------------------------------


def _env(app: Flask, redis_url: str) -> dict[str, str]:
    settings = app.extensions["paygo"].settings
    env = {
        **os.environ,
        "PAYGO_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": redis_url,
        "PAYGO_INSTANCE_PATH": settings.instance_path,
        "SECRET_KEY": TEST_SETTINGS["secret_key"],
        "PAYGO_MASTER_KEY": TEST_SETTINGS["master_key"],
        "PUBLIC_BASE_URL": settings.public_base_url,
        "LOG_LEVEL": "WARNING",
    }
    names = (
        "sms_provider",
        "at_username",
        "at_api_key",
        "at_api_base_url",
        "twilio_account_sid",
        "twilio_auth_token",
        "twilio_from",
        "twilio_api_base_url",
        "sms_timeout_seconds",
        "sms_retry_base_seconds",
        "sms_retry_max_seconds",
        "sms_reconcile_after_seconds",
        "sms_sweep_interval_seconds",
    )
    for name in names:
        value = getattr(settings, name)
        if value is not None:
            env[name.upper()] = str(value)
    return env


def _start_worker(app: Flask, redis_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from paygo.cli import main; main()", "worker"],
        cwd=ROOT,
        env=_env(app, redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker, its scheduler and its work horse: a crash, no clean-up."""
    for pid in [*_descendants(process.pid), process.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(10)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            _kill_tree(process)
    for pid in _descendants(process.pid):  # a horse in its own process group
        os.kill(pid, signal.SIGKILL)


def _wait(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.1)


@pytest.mark.slow
def test_provider_down_for_a_while_with_a_running_worker_delivers_each_once(
    rq_app: Callable[..., Flask], at: FakeAfricasTalking, redis_url: str
) -> None:
    app = rq_app(**at.settings(), **FAST)
    gateway = gateway_of(app)
    worker = _start_worker(app, redis_url)
    try:
        at.script(["down"] * 10)
        bodies = [f"receipt {i}" for i in range(8)]
        queue(gateway, *bodies)
        _wait(lambda: all(m.status == MessageStatus.SENT for m in outbox(gateway)))
    finally:
        _stop(worker)
    assert sorted(at.bodies_to(KE)) == sorted(bodies)  # every one, exactly once
    assert at.requests == 18


@pytest.mark.slow
def test_worker_killed_after_africastalking_accepted_is_settled_by_the_report(
    rq_app: Callable[..., Flask], at: FakeAfricasTalking, redis_url: str
) -> None:
    app = rq_app(**at.settings(), **FAST)
    gateway = gateway_of(app)
    worker = _start_worker(app, redis_url)
    at.script(["hold"])
    try:
        (message_id,) = queue(gateway, "token 777")
        assert at.held.wait(20), "the worker never called the provider"
    finally:
        _kill_tree(worker)  # AT has the message; we never recorded its answer
    at.release.set()
    assert outbox(gateway)[0].status == MessageStatus.SENDING
    response = app.test_client().post(
        "/sms/africastalking/delivery", data=at.delivery_report(at.accepted[0])
    )
    assert response.get_json()["state"] == "delivered"
    time.sleep(2.6)  # past the lease: a sweep would resend what was not reconciled
    sending.sweep(gateway)
    _work(app)
    (message,) = outbox(gateway)
    assert message.status == MessageStatus.DELIVERED and message.id == message_id
    assert at.bodies_to(KE) == ["token 777"]


@pytest.mark.slow
def test_worker_killed_after_twilio_accepted_is_found_by_lookup_not_resent(
    rq_app: Callable[..., Flask], tw: FakeTwilio, redis_url: str
) -> None:
    app = rq_app(**tw.settings(), **FAST)
    gateway = gateway_of(app)
    worker = _start_worker(app, redis_url)
    tw.script(["hold"])
    try:
        queue(gateway, "token 888", to=TZ)
        assert tw.held.wait(20), "the worker never called the provider"
    finally:
        _kill_tree(worker)
    tw.release.set()
    time.sleep(1.8)  # the lease: three timeouts and the backoff
    assert sending.sweep(gateway)["reconciling"] == 1
    _work(app)
    (message,) = outbox(gateway)
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id == tw.messages[0]["sid"]
    assert tw.bodies_to(TZ) == ["token 888"]


def test_worker_command_refuses_to_run_without_redis(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 1 and "REDIS_URL is not set" in result.output


def test_a_job_for_a_message_gone_or_already_sent_does_nothing(
    rq_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = rq_app(**at.settings(), **FAST)
    gateway = gateway_of(app)
    rq_queue(gateway).enqueue(sending.send_message_job, 424242, job_id="send-message-424242-1")
    _work(app)
    assert Queue("paygo", connection=redis_of(gateway)).count == 0 and at.requests == 0
