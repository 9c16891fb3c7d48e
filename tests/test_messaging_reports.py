"""Delivery report endpoints and the daily chase of reports that never came."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from paygo.gateway import Gateway
from paygo.messaging import dispatcher, reports
from paygo.messaging.providers import StatusReport
from paygo.models import MessageStatus, OutboundMessage, utcnow
from tests.fakes.at_api import FakeAfricasTalking
from tests.fakes.twilio_api import FakeTwilio
from tests.messaging_helpers import KE, TZ, gateway_of, row, send

AT_URL = "/sms/africastalking/delivery"


# -- Africa's Talking ----------------------------------------------------------------------


def test_at_sample_report_marks_the_message_undeliverable_with_the_reason(
    make_app: Callable[..., Flask], at: FakeAfricasTalking, shared_dir: Path
) -> None:
    app = make_app(**at.settings())
    message = send(app)
    sample = json.loads((shared_dir / "providers" / "at_sms_delivery.json").read_text())["body"]
    form = {**sample, "id": message.provider_message_id, "phoneNumber": KE}
    response = app.test_client().post(AT_URL, data=form)
    assert response.status_code == 200 and response.get_json()["state"] == "undeliverable"
    stored = row(gateway_of(app), message.id or 0)
    assert stored.status == MessageStatus.UNDELIVERABLE
    assert stored.status_reason == "africastalking Failed UserInBlackList network 63902"


def test_at_success_report_marks_delivered_and_a_replay_changes_nothing(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings())
    client = app.test_client()
    message = send(app)
    report = at.delivery_report(at.accepted[0])
    assert client.post(AT_URL, data=report).get_json()["state"] == "delivered"
    first = row(gateway_of(app), message.id or 0)
    assert client.post(AT_URL, data=report).status_code == 200
    again = row(gateway_of(app), message.id or 0)
    assert again.status == MessageStatus.DELIVERED and again.delivered_at == first.delivered_at


def test_at_reports_out_of_order_never_move_a_message_back(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings())
    client = app.test_client()
    message = send(app)
    client.post(AT_URL, data=at.delivery_report(at.accepted[0], "Success"))
    client.post(AT_URL, data=at.delivery_report(at.accepted[0], "Buffered"))
    client.post(AT_URL, data=at.delivery_report(at.accepted[0], "Failed", "DeliveryFailure"))
    assert row(gateway_of(app), message.id or 0).status == MessageStatus.DELIVERED


def test_at_report_for_a_message_not_ours_is_acknowledged_and_ignored(client: FlaskClient) -> None:
    response = client.post(
        AT_URL, data={"id": "ATXid_unknown", "status": "Success", "phoneNumber": KE}
    )
    assert response.status_code == 200 and response.json == {"status": "ignored"}


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"status": "Success", "phoneNumber": KE}, "id"),
        ({"id": "ATXid_1", "phoneNumber": KE}, "status"),
        ({"id": "ATXid_1", "status": "Delivered!", "phoneNumber": KE}, "status"),
        ({"id": "ATXid_1", "status": "Success", "phoneNumber": "not a phone"}, "phoneNumber"),
        ({"id": "ATXid_1", "status": "Success", "retryCount": "two"}, "retryCount"),
        ({"id": "x" * 500, "status": "Success"}, "id"),
        ({"id": "ATXid_1'; DROP TABLE", "status": "Success"}, "id"),
        ({"id": "ATXid_1", "status": "Failed", "failureReason": "r" * 5000}, "failureReason"),
    ],
)
def test_at_bad_reports_get_a_clear_400_and_change_nothing(
    make_app: Callable[..., Flask], at: FakeAfricasTalking, form: dict[str, str], field: str
) -> None:
    app = make_app(**at.settings())
    message = send(app)
    response = app.test_client().post(AT_URL, data=form)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_input" and response.get_json()["field"] == field
    assert row(gateway_of(app), message.id or 0).status == MessageStatus.SENT


def test_at_report_as_json_or_empty_is_400_not_500(client: FlaskClient) -> None:
    assert client.post(AT_URL, json={"id": "ATXid_1", "status": "Success"}).status_code == 400
    assert client.post(AT_URL).status_code == 400


def test_at_huge_report_is_refused_before_it_is_read(client: FlaskClient) -> None:
    response = client.post(
        AT_URL, data={"id": "ATXid_1", "status": "Success", "failureReason": "x" * 300_000}
    )
    assert response.status_code == 413 and response.get_json()["error"]


def test_at_report_for_a_send_whose_answer_was_lost_records_the_id(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings(), sms_timeout_seconds=1.0, sms_reconcile_after_seconds=60)
    at.script(["slow"])
    message = send(app)
    assert message.status == MessageStatus.SENDING and message.provider_message_id is None
    form = at.delivery_report(at.accepted[0], "Sent")
    assert app.test_client().post(AT_URL, data=form).get_json()["state"] == "sent"
    stored = row(gateway_of(app), message.id or 0)
    assert stored.provider_message_id == at.accepted[0]["id"]
    assert stored.next_attempt_at is None  # settled: no reconciliation, no resend


# -- Twilio --------------------------------------------------------------------------------


def test_twilio_signed_callback_updates_the_message(
    make_app: Callable[..., Flask], tw: FakeTwilio
) -> None:
    app = make_app(**tw.settings())
    message = send(app, to=TZ)
    path, form, headers = tw.status_callback(tw.messages[0]["sid"], "delivered")
    response = app.test_client().post(path, data=form, headers=headers)
    assert response.status_code == 204
    assert row(gateway_of(app), message.id or 0).status == MessageStatus.DELIVERED


def test_twilio_undelivered_keeps_the_error_code(
    make_app: Callable[..., Flask], tw: FakeTwilio, shared_dir: Path
) -> None:
    app = make_app(**tw.settings())
    message = send(app, to=TZ)
    sample = json.loads((shared_dir / "providers" / "twilio_sms_status.json").read_text())
    assert sample["body"]["MessageStatus"] == "undelivered"
    path, form, headers = tw.status_callback(
        tw.messages[0]["sid"], "undelivered", int(sample["body"]["ErrorCode"])
    )
    assert app.test_client().post(path, data=form, headers=headers).status_code == 204
    stored = row(gateway_of(app), message.id or 0)
    assert stored.status == MessageStatus.UNDELIVERABLE
    assert stored.status_reason == "twilio undelivered 30003"


@pytest.mark.parametrize(
    "headers", [{}, {"X-Twilio-Signature": ""}, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}]
)
def test_twilio_callback_without_a_valid_signature_is_403_and_changes_nothing(
    make_app: Callable[..., Flask], tw: FakeTwilio, headers: dict[str, str]
) -> None:
    app = make_app(**tw.settings())
    message = send(app, to=TZ)
    path, form, _ = tw.status_callback(tw.messages[0]["sid"], "failed")
    assert app.test_client().post(path, data=form, headers=headers).status_code == 403
    assert row(gateway_of(app), message.id or 0).status == MessageStatus.SENT


def test_twilio_callback_signed_with_another_token_or_url_is_403(
    make_app: Callable[..., Flask], tw: FakeTwilio
) -> None:
    app = make_app(**tw.settings())
    message = send(app, to=TZ)
    client = app.test_client()
    path, form, headers = tw.status_callback(tw.messages[0]["sid"], "failed", token="other")
    assert client.post(path, data=form, headers=headers).status_code == 403
    path, form, headers = tw.status_callback(tw.messages[0]["sid"], "failed")
    assert (
        client.post(path.replace("m=", "m=9"), data=form, headers=headers).status_code == 403
    )  # the query is signed too
    assert row(gateway_of(app), message.id or 0).status == MessageStatus.SENT


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"MessageSid": "not-a-sid"}, "MessageSid"),
        ({"MessageSid": ""}, "MessageSid"),
        ({"MessageStatus": "exploded"}, "MessageStatus"),
        ({"ErrorCode": "abc"}, "ErrorCode"),
    ],
)
def test_twilio_signed_but_malformed_callback_is_400(
    make_app: Callable[..., Flask], tw: FakeTwilio, change: dict[str, str], field: str
) -> None:
    app = make_app(**tw.settings())
    send(app, to=TZ)
    path, form, _ = tw.status_callback(tw.messages[0]["sid"], "delivered")
    form.update(change)
    signature = _sign(app, path, form)
    response = app.test_client().post(path, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 400 and response.get_json()["field"] == field


def test_twilio_callback_matches_our_id_when_the_sid_was_never_recorded(
    make_app: Callable[..., Flask], tw: FakeTwilio
) -> None:
    app = make_app(**tw.settings(), sms_timeout_seconds=1.0, sms_retry_base_seconds=60)
    tw.script(["slow"])
    message = send(app, to=TZ)
    assert message.status == MessageStatus.SENDING and message.provider_message_id is None
    path, form, headers = tw.status_callback(tw.messages[0]["sid"], "sent")
    assert app.test_client().post(path, data=form, headers=headers).status_code == 204
    stored = row(gateway_of(app), message.id or 0)
    assert stored.status == MessageStatus.SENT
    assert stored.provider_message_id == tw.messages[0]["sid"]


def test_twilio_status_endpoint_is_404_when_twilio_is_not_configured(client: FlaskClient) -> None:
    assert client.post("/sms/twilio/status", data={"MessageSid": "x"}).status_code == 404


def _sign(app: Flask, path: str, form: dict[str, str]) -> str:
    from twilio.request_validator import RequestValidator

    settings: Any = app.extensions["paygo"].settings
    return str(
        RequestValidator(settings.twilio_auth_token).compute_signature(
            settings.public_base_url + path, form
        )
    )


# -- state rules and the daily chase -------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        ("sending", "sent", True),
        ("sent", "delivered", True),
        ("delivered", "sent", False),
        ("undeliverable", "delivered", True),
        ("failed", "sent", False),
        ("sent", "undeliverable", True),
        ("delivered", "failed", False),
        ("sent", "sent", False),
    ],
)
def test_reports_only_move_messages_forward(current: str, new: str, moves: bool) -> None:
    assert dispatcher.advances(MessageStatus(current), MessageStatus(new)) is moves


def test_daily_chase_asks_twilio_about_reports_that_never_came(
    make_app: Callable[..., Flask], tw: FakeTwilio
) -> None:
    app = make_app(**tw.settings())
    gateway: Gateway = app.extensions["paygo"]
    message = send(app, to=TZ)
    fresh = send(app, body="just sent", to=TZ)
    _age(gateway, message.id or 0, hours=2)
    tw.set_status(tw.messages[0]["sid"], "delivered")
    tw.set_status(tw.messages[1]["sid"], "delivered")
    counts = reports.chase(gateway)
    assert counts["updated"] == 1 and counts["checked"] == 1
    assert row(gateway_of(app), message.id or 0).status == MessageStatus.DELIVERED
    assert row(gateway_of(app), fresh.id or 0).status == MessageStatus.SENT  # too recent to chase


def test_daily_chase_notes_silence_once_where_the_provider_has_no_lookup(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings())
    gateway: Gateway = app.extensions["paygo"]
    message = send(app)
    _age(gateway, message.id or 0, hours=30)
    assert reports.chase(gateway)["noted"] == 1
    assert reports.chase(gateway)["noted"] == 0
    stored = row(gateway_of(app), message.id or 0)
    assert stored.status == MessageStatus.SENT
    assert (stored.status_reason or "").startswith("no delivery report by")


def test_daily_chase_survives_a_provider_outage(
    make_app: Callable[..., Flask], tw: FakeTwilio
) -> None:
    app = make_app(**tw.settings())
    gateway: Gateway = app.extensions["paygo"]
    message = send(app, to=TZ)
    _age(gateway, message.id or 0, hours=2)
    tw.stop()
    assert reports.chase(gateway)["errors"] == 1
    assert row(gateway_of(app), message.id or 0).status == MessageStatus.SENT


def test_apply_report_for_a_message_not_ours_returns_none(gateway: Gateway) -> None:
    with gateway.db.transaction() as session:
        report = StatusReport("twilio", "SM" + "0" * 32, MessageStatus.DELIVERED)
        assert dispatcher.apply_report(session=session, report=report) is None


def _age(gateway: Gateway, message_id: int, *, hours: int) -> None:
    with gateway.db.transaction() as session:
        message = session.get(OutboundMessage, message_id)
        assert message is not None
        message.sent_at = utcnow() - timedelta(hours=hours)
        session.add(message)
