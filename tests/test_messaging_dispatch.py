"""The dispatcher, inline (no Redis, as `make run` serves it): every message arrives once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from paygo import schedule
from paygo.messaging import dispatcher, quiet
from paygo.messaging.outbox import Claim, queue_message
from paygo.messaging.sending import send_committed, sweep
from paygo.models import MessageStatus, OutboundMessage, utcnow
from paygo.settings import Settings
from tests.fakes.at_api import FakeAfricasTalking
from tests.fakes.twilio_api import FakeTwilio
from tests.messaging_helpers import KE, TZ, gateway_of, outbox, queue, row, sweep_until, write

#: Short backoff and windows, so faults play out at once (and a timeout where one is provoked).
FAST: dict[str, Any] = {
    "sms_timeout_seconds": 1.0,
    "sms_retry_base_seconds": 0.01,
    "sms_retry_max_seconds": 0.05,
    "sms_reconcile_after_seconds": 0.3,
}


def test_a_message_is_sent_once_its_transaction_commits(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    gateway = gateway_of(make_app(**at.settings(), **FAST))
    with gateway.db.transaction() as session:
        message = write(session, KE, "Token 123 456 789")
        assert at.accepted == []  # nothing leaves before the commit
    send_committed(gateway, [message.id or 0])
    sent = row(gateway, message.id or 0)
    assert sent.status == MessageStatus.SENT and sent.provider == "africastalking"
    assert sent.provider_message_id == at.accepted[0]["id"] and sent.attempts == 1
    assert at.bodies_to(KE) == ["Token 123 456 789"]


def test_a_rolled_back_transaction_sends_nothing(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    gateway = gateway_of(make_app(**at.settings(), **FAST))
    with pytest.raises(RuntimeError), gateway.db.transaction() as session:
        queue_message(session=session, recipient=KE, body="never")
        raise RuntimeError("the payment failed")
    queue(gateway, "after")
    assert at.bodies_to(KE) == ["after"] and len(outbox(gateway)) == 1


def test_the_same_dedupe_key_written_twice_is_sent_once(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    gateway = gateway_of(make_app(**at.settings(), **FAST))
    for _ in range(2):
        with gateway.db.transaction() as session:
            message = queue_message(
                session=session, recipient=KE, body="receipt", dedupe_key="payment:1"
            )
            written = [message.id or 0] if message is not None else []
        send_committed(gateway, written)
    assert at.bodies_to(KE) == ["receipt"]


def test_provider_down_for_a_while_then_back_delivers_every_message_once(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    # A backoff longer than a send takes: with 10 ms, a loaded machine found the retry
    # already due when the refusal was recorded and resent at once, outlasting a fixed
    # number of scripted outages. The provider stays down until the test says so.
    slower = {"sms_retry_base_seconds": 0.2, "sms_retry_max_seconds": 0.5, "sms_max_attempts": 50}
    gateway = gateway_of(make_app(**at.settings(), **{**FAST, **slower}))
    at.default = "down"
    bodies = [f"message {i}" for i in range(5)]
    ids = queue(gateway, *bodies)
    assert at.accepted == [] and {m.status for m in outbox(gateway)} == {"queued"}
    at.default = "ok"
    sweep_until(lambda: all(m.status == MessageStatus.SENT for m in outbox(gateway)), gateway)
    assert sorted(at.bodies_to(KE)) == sorted(bodies)  # each exactly once
    assert max(row(gateway, i).attempts for i in ids) > 1


def test_a_permanent_error_goes_to_the_dead_letter_without_retries(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    gateway = gateway_of(make_app(**at.settings(), **FAST))
    at.recipient_codes[KE] = 406
    (message_id,) = queue(gateway, "you are blacklisted")
    for minutes in (1, 10, 60):  # past any backoff: nothing is tried again
        sweep(gateway, now=utcnow() + timedelta(minutes=minutes))
    failed = row(gateway, message_id)
    assert failed.status == MessageStatus.FAILED and failed.attempts == 1
    assert "406" in (failed.status_reason or "") and at.requests == 1


def test_retries_stop_after_the_last_attempt_into_the_dead_letter(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    gateway = gateway_of(make_app(**at.settings(), **{**FAST, "sms_max_attempts": 3}))
    at.default = "down"
    (message_id,) = queue(gateway, "never arrives")
    sweep_until(lambda: row(gateway, message_id).status == MessageStatus.FAILED, gateway)
    failed = row(gateway, message_id)
    assert failed.attempts == 3 and at.requests == 3
    assert (failed.status_reason or "").startswith("gave up after 3 attempts")


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    settings = Settings(sms_retry_base_seconds=5, sms_retry_max_seconds=1800)
    for attempt, base in ((1, 5), (2, 25), (3, 125), (4, 625), (5, 1800), (9, 1800)):
        delays = {dispatcher.retry_delay(settings, attempt).total_seconds() for _ in range(20)}
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert len(delays) > 1  # jittered: workers do not retry in lockstep


def test_an_africastalking_timeout_after_acceptance_is_settled_by_its_delivery_report(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings(), **FAST)
    gateway = gateway_of(app)
    at.script(["slow"])
    (message_id,) = queue(gateway, "token 111")
    unknown = row(gateway, message_id)
    assert unknown.status == MessageStatus.SENDING
    assert (unknown.status_reason or "").startswith("outcome unknown")
    response = app.test_client().post(
        "/sms/africastalking/delivery", data=at.delivery_report(at.accepted[0])
    )
    assert response.status_code == 200 and response.json == {
        "status": "ok",
        "message_id": message_id,
        "state": "delivered",
    }
    sweep(gateway, now=utcnow() + timedelta(minutes=1))  # past the reconciliation window
    settled = row(gateway, message_id)
    assert settled.status == MessageStatus.DELIVERED
    assert settled.provider_message_id == at.accepted[0]["id"]
    assert at.bodies_to(KE) == ["token 111"]


def test_an_africastalking_timeout_with_no_report_is_sent_again_after_the_window(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    gateway = gateway_of(make_app(**at.settings(), **FAST))
    at.script(["hang"])  # never took it, never answered in time
    (message_id,) = queue(gateway, "token 222")
    sweep(gateway)
    assert row(gateway, message_id).status == MessageStatus.SENDING  # still waiting
    sweep_until(lambda: row(gateway, message_id).status == MessageStatus.SENT, gateway)
    assert at.bodies_to(KE) == ["token 222"] and row(gateway, message_id).attempts == 2


def test_a_twilio_timeout_is_looked_up_instead_of_resent(
    make_app: Callable[..., Flask], tw: FakeTwilio
) -> None:
    gateway = gateway_of(make_app(**tw.settings(), **FAST))
    tw.script(["slow"])
    (message_id,) = queue(gateway, "token 333", to=TZ)
    assert row(gateway, message_id).status == MessageStatus.SENDING
    sweep_until(lambda: row(gateway, message_id).status == MessageStatus.SENT, gateway)
    settled = row(gateway, message_id)
    assert settled.provider_message_id == tw.messages[0]["sid"]
    assert (settled.status_reason or "").startswith("reconciled")
    assert tw.bodies_to(TZ) == ["token 333"]


def test_a_twilio_server_error_that_created_nothing_is_sent_again(
    make_app: Callable[..., Flask], tw: FakeTwilio
) -> None:
    gateway = gateway_of(make_app(**tw.settings(), **FAST))
    tw.script(["down"])
    (message_id,) = queue(gateway, "token 444", to=TZ)
    sweep_until(lambda: row(gateway, message_id).status == MessageStatus.SENT, gateway)
    assert tw.bodies_to(TZ) == ["token 444"]


def test_a_send_interrupted_after_acceptance_is_reconciled_not_resent(
    make_app: Callable[..., Flask], tw: FakeTwilio
) -> None:
    gateway = gateway_of(make_app(**tw.settings(), **FAST))
    # A worker that dies between Twilio's answer and our commit: claimed, sent, unrecorded.
    with gateway.db.transaction() as session:
        message = OutboundMessage(recipient=TZ, body="token 555")
        session.add(message)
    claim = dispatcher._claim(gateway, message.id or 0, utcnow())
    assert isinstance(claim, Claim)
    gateway.sms.get("twilio").send(message_id=claim.message_id, recipient=TZ, body=claim.body)
    sweep(gateway)  # within the lease: the worker might still be at it
    assert row(gateway, claim.message_id).status == MessageStatus.SENDING
    sweep_until(lambda: row(gateway, claim.message_id).status == MessageStatus.SENT, gateway)
    assert tw.bodies_to(TZ) == ["token 555"]


def test_two_workers_on_one_message_send_it_once(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    gateway = gateway_of(make_app(**at.settings(), **FAST))
    with gateway.db.transaction() as session:
        message = OutboundMessage(recipient=KE, body="once")
        session.add(message)
    at.script(["hold"])
    first = threading.Thread(target=dispatcher.deliver, args=(gateway, message.id))
    first.start()
    assert at.held.wait(5)
    assert dispatcher.deliver(gateway, message.id or 0).action == "skipped"
    at.release.set()
    first.join(5)
    assert at.bodies_to(KE) == ["once"] and row(gateway, message.id or 0).status == "sent"


def test_routes_send_each_country_through_its_provider(
    make_app: Callable[..., Flask], at: FakeAfricasTalking, tw: FakeTwilio
) -> None:
    settings = {
        **tw.settings(),
        **at.settings(),
        "sms_provider": "twilio",
        "sms_routes": {"254": "africastalking"},
    }
    gateway = gateway_of(make_app(**settings, **FAST))
    queue(gateway, "to Kenya", to=KE)
    queue(gateway, "to Tanzania", to=TZ)
    assert at.bodies_to(KE) == ["to Kenya"] and tw.bodies_to(TZ) == ["to Tanzania"]
    assert [m.provider for m in outbox(gateway)] == ["africastalking", "twilio"]


def test_the_console_provider_logs_and_marks_sent(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    gateway = gateway_of(make_app())
    with caplog.at_level("INFO", logger="paygo.sms"):
        (message_id,) = queue(gateway, "demo message")
    assert "demo message" in caplog.text
    assert row(gateway, message_id).status == MessageStatus.SENT


def test_without_redis_a_background_thread_retries_later(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings(), **{**FAST, "sms_retry_base_seconds": 0.5})
    gateway = gateway_of(app)
    at.script(["down"])
    (message_id,) = queue(gateway, "retried by the thread")
    waiting = row(gateway, message_id)
    assert waiting.status == MessageStatus.QUEUED and waiting.next_attempt_at is not None
    due = waiting.next_attempt_at
    early = schedule.Ticker(app, interval=3600, clock=lambda: due - timedelta(milliseconds=1))
    assert "messages-sweep" in early.tick()
    assert row(gateway, message_id).status == MessageStatus.QUEUED  # its backoff runs
    # The thread ticks once as it starts; a day later, every periodic job is due.
    ticker = schedule.Ticker(app, interval=3600, clock=lambda: due + timedelta(days=1))
    ticker.start()
    ticker.stop(timeout=120)
    assert row(gateway, message_id).status == MessageStatus.SENT
    assert at.bodies_to(KE) == ["retried by the thread"]
    ran = gateway.schedule.last_run
    assert {"messages-sweep", "messages-reminders", "messages-reconcile"} <= set(ran)
    assert ran["messages-reconcile"] == due + timedelta(days=1)


def test_the_web_process_starts_its_sweeper_on_the_first_request_outside_tests(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(sms_sweep_interval_seconds=60)
    app.testing = False
    app.test_client().get("/healthz")
    ticker = gateway_of(app).schedule.ticker
    assert ticker is not None
    try:
        assert ticker.is_alive()
    finally:
        ticker.stop(timeout=120)
    assert not ticker.is_alive()


def test_a_reminder_during_quiet_hours_waits_for_the_morning(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    # Quiet from this hour until the same time tomorrow less an hour: the customer's night.
    hour = utcnow().astimezone(quiet.zone("Africa/Nairobi", "UTC")).hour
    gateway = gateway_of(
        make_app(**at.settings(), **FAST, quiet_hours_start=hour, quiet_hours_end=(hour - 1) % 24)
    )
    with gateway.db.transaction() as session:
        reminder = write(session, KE, "pay soon", kind="reminder")
        reply = write(session, KE, "your balance")
    send_committed(gateway, [reminder.id or 0, reply.id or 0])
    assert at.bodies_to(KE) == ["your balance"]  # replies ignore quiet hours
    held = row(gateway, reminder.id or 0)
    assert held.status == MessageStatus.QUEUED and held.attempts == 0
    assert held.next_attempt_at is not None
    assert held.next_attempt_at - utcnow() > timedelta(hours=20)
    assert reply.id is not None
