"""Infobip: the client against a loopback stand-in of its API, the dispatcher sending
through it, and its inbound and delivery report web hooks behind the path token."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlmodel import select

from paygo.errors import ConfigurationError
from paygo.messaging import reports
from paygo.messaging.providers import OutcomeUnknown, SendRefused
from paygo.messaging.providers.infobip import (
    Infobip,
    map_status,
    our_id_in,
    our_message_id,
    send_outcome,
)
from paygo.models import MessageStatus, OutboundMessage, utcnow
from paygo.settings import Settings, load_settings
from tests.conversation_data import KNOWN, gw, one_account, ussd_app
from tests.fakes.infobip_api import CALLBACK_TOKEN, FakeInfobip, status
from tests.messaging_helpers import KE, TZ, gateway_of, outbox, queue, row, send, sweep_until

FAST: dict[str, Any] = {
    "sms_timeout_seconds": 1.0,
    "sms_retry_base_seconds": 0.01,
    "sms_retry_max_seconds": 0.05,
    "sms_reconcile_after_seconds": 0.3,
}


def _client(ib: FakeInfobip, **overrides: Any) -> Infobip:
    settings = {**ib.settings(), **overrides}
    return Infobip(
        Settings(sms_timeout_seconds=1.0, public_base_url="https://gw.example.org", **settings)
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the client ----------------------------------------------------------------------------


def test_send_gives_our_own_message_id_and_asks_for_reports_at_the_token_url(
    ib: FakeInfobip,
) -> None:
    accepted = _client(ib).send(message_id=42, recipient=KE, body="Your token: 123 456 789")
    (sent,) = ib.messages
    assert accepted.provider_message_id == sent["messageId"] == our_message_id(42, KE, sent["text"])
    assert accepted.status == MessageStatus.SENT and accepted.reason == "infobip PENDING_ACCEPTED"
    assert (sent["to"], sent["sender"]) == ("254711000001", "SunPower")
    assert sent["webhooks"]["delivery"]["url"] == (
        f"https://gw.example.org/sms/infobip/{CALLBACK_TOKEN}/delivery"
    )
    assert ib.bodies_to(KE) == ["Your token: 123 456 789"]


def test_without_a_callback_token_no_report_url_is_given_and_no_sender_when_unset(
    ib: FakeInfobip,
) -> None:
    _client(ib, infobip_callback_token=None, infobip_sender=None).send(
        message_id=1, recipient=KE, body="hi"
    )
    assert ib.messages[0]["webhooks"] is None and ib.messages[0]["sender"] == "InfoSMS"


def test_our_message_id_carries_the_outbox_id_and_differs_for_another_text() -> None:
    ours = our_message_id(17, KE, "token 1")
    assert our_id_in(ours) == 17 and ours != our_message_id(17, KE, "token 2")
    assert our_id_in("2250be2d4219-3af1-78856-aabe-1362af1edfd2") is None


@pytest.mark.parametrize(
    ("name", "permanent"),
    [("REJECTED_DESTINATION_BLOCKLISTED", True), ("REJECTED_NOT_ENOUGH_CREDITS", False)],
)
def test_a_rejected_destination_is_refused(ib: FakeInfobip, name: str, permanent: bool) -> None:
    ib.statuses["254711000001"] = name
    with pytest.raises(SendRefused) as caught:
        _client(ib).send(message_id=1, recipient=KE, body="x")
    assert caught.value.permanent is permanent and name in caught.value.reason
    assert ib.messages == []


def test_a_wrong_api_key_is_retried_not_dead_lettered(ib: FakeInfobip) -> None:
    with pytest.raises(SendRefused) as caught:
        _client(ib, infobip_api_key="wrong").send(message_id=1, recipient=KE, body="x")
    assert not caught.value.permanent
    assert caught.value.reason == "infobip 401 UNAUTHORIZED Invalid login details"


def test_a_5xx_is_an_unknown_outcome_settled_by_lookup(ib: FakeInfobip) -> None:
    ib.script(["down"])
    client = _client(ib)
    with pytest.raises(OutcomeUnknown) as caught:
        client.send(message_id=1, recipient=KE, body="x")
    assert "503 GENERAL_ERROR" in caught.value.reason
    assert client.lookup(message_id=1, recipient=KE, body="x", since=utcnow()) is None


def test_a_timeout_is_an_unknown_outcome_and_lookup_finds_the_message(ib: FakeInfobip) -> None:
    ib.script(["slow"])
    client = _client(ib)
    with pytest.raises(OutcomeUnknown):
        client.send(message_id=7, recipient=KE, body="token 123")
    found = client.lookup(message_id=7, recipient=KE, body="token 123", since=utcnow())
    assert found is not None and found.provider_message_id == ib.messages[0]["messageId"]
    assert client.lookup(message_id=7, recipient=KE, body="other", since=utcnow()) is None
    assert client.lookup(message_id=8, recipient=KE, body="token 123", since=utcnow()) is None


def test_a_connection_dropped_after_sending_is_an_unknown_outcome(ib: FakeInfobip) -> None:
    ib.script(["drop"])
    with pytest.raises(OutcomeUnknown):
        _client(ib).send(message_id=1, recipient=KE, body="x")


def test_unreachable_is_refused_and_worth_retrying(ib: FakeInfobip) -> None:
    client = _client(ib, infobip_base_url=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(SendRefused) as caught:
        client.send(message_id=1, recipient=KE, body="x")
    assert not caught.value.permanent


def test_sending_an_id_infobip_already_took_is_left_to_the_lookup(ib: FakeInfobip) -> None:
    client = _client(ib)
    client.send(message_id=1, recipient=KE, body="x")
    with pytest.raises(OutcomeUnknown) as caught:
        client.send(message_id=1, recipient=KE, body="x")
    assert "REJECTED_DUPLICATE_MESSAGE_ID" in caught.value.reason
    assert ib.bodies_to(KE) == ["x"]


def test_fetch_status_reads_the_logs(ib: FakeInfobip) -> None:
    client = _client(ib)
    sent = client.send(message_id=3, recipient=KE, body="x").provider_message_id
    assert sent is not None
    ib.set_status(sent, "DELIVERED_TO_OPERATOR")
    report = client.fetch_status(sent)
    assert report is not None and report.status == MessageStatus.SENT  # not yet the handset
    ib.set_status(sent, "DELIVERED_TO_HANDSET")
    report = client.fetch_status(sent)
    assert report is not None and report.status == MessageStatus.DELIVERED
    assert (report.message_id, report.reason) == (3, "infobip DELIVERED_TO_HANDSET")
    assert client.fetch_status("paygo-99-000000000000") is None


def test_the_logs_being_down_is_an_error_not_a_miss(ib: FakeInfobip) -> None:
    client = _client(ib)
    ib.default = "down"
    with pytest.raises(OutcomeUnknown):
        client.lookup(message_id=1, recipient=KE, body="x", since=utcnow())


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({}, OutcomeUnknown),
        ({"messages": "no"}, OutcomeUnknown),
        ({"messages": [{"messageId": "m"}]}, OutcomeUnknown),
        ({"messages": [{"status": {"groupId": 9, "name": "NEW"}}]}, OutcomeUnknown),
        ({"messages": [{"status": status("REJECTED_NETWORK")}]}, SendRefused),
        ({"messages": [{"status": status("UNDELIVERABLE_NOT_DELIVERED")}]}, SendRefused),
    ],
)
def test_odd_send_replies_never_count_as_sent(reply: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        send_outcome(reply, "paygo-1-000000000000")


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("PENDING_ENROUTE", MessageStatus.SENT),
        ("DELIVERED_TO_OPERATOR", MessageStatus.SENT),
        ("DELIVERED_TO_HANDSET", MessageStatus.DELIVERED),
        ("UNDELIVERABLE_NOT_DELIVERED", MessageStatus.UNDELIVERABLE),
        ("EXPIRED_EXPIRED", MessageStatus.UNDELIVERABLE),
        ("REJECTED_NETWORK", MessageStatus.FAILED),
    ],
)
def test_statuses_map_by_group_and_the_operator_is_not_the_handset(
    name: str, ours: MessageStatus
) -> None:
    assert map_status(status(name), None) == (ours, f"infobip {name}")


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({"SMS_PROVIDER": "infobip", "INFOBIP_API_KEY": "k"}, "INFOBIP_BASE_URL"),
        ({"SMS_ROUTES": "255=infobip", "INFOBIP_BASE_URL": "x.api.infobip.com"}, "INFOBIP_API_KEY"),
        (
            {"SMS_PROVIDER": "infobip", "INFOBIP_API_KEY": "k", "INFOBIP_BASE_URL": "not a url"},
            "INFOBIP_BASE_URL",
        ),
    ],
)
def test_misconfigured_infobip_is_refused_at_start_naming_the_setting(
    environ: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"DATABASE_URL": "sqlite://", **environ})
    assert caught.value.setting == missing


def test_infobip_is_accepted_by_sms_provider_and_routes_with_a_base_url_as_shown() -> None:
    settings = load_settings(
        environ={
            "DATABASE_URL": "sqlite://",
            "SMS_ROUTES": "255=infobip",
            "INFOBIP_BASE_URL": "xyz12.api.infobip.com",
            "INFOBIP_API_KEY": "k",
            "INFOBIP_CALLBACK_TOKEN": "t",
        }
    )
    assert settings.sms_routes == {"255": "infobip"} and settings.infobip_sender is None
    assert Infobip(settings).base_url == "https://xyz12.api.infobip.com"


# -- the dispatcher sending through Infobip -------------------------------------------------


def test_a_message_is_sent_through_infobip_once_committed(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    app = make_app(**ib.settings(), **FAST)
    message = send(app, "Token 123 456 789")
    assert message.status == MessageStatus.SENT and message.provider == "infobip"
    assert message.provider_message_id == ib.messages[0]["messageId"]
    assert ib.bodies_to(KE) == ["Token 123 456 789"]


def test_a_timeout_is_looked_up_in_the_logs_instead_of_resent(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    gateway = gateway_of(make_app(**ib.settings(), **FAST))
    ib.script(["slow"])
    (message_id,) = queue(gateway, "token 333")
    assert row(gateway, message_id).status == MessageStatus.SENDING
    sweep_until(lambda: row(gateway, message_id).status == MessageStatus.SENT, gateway)
    settled = row(gateway, message_id)
    assert settled.provider_message_id == ib.messages[0]["messageId"]
    assert (settled.status_reason or "").startswith("reconciled")
    assert ib.bodies_to(KE) == ["token 333"]


def test_a_server_error_that_took_nothing_is_sent_again(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    gateway = gateway_of(make_app(**ib.settings(), **FAST))
    ib.script(["down"])
    (message_id,) = queue(gateway, "token 444")
    sweep_until(lambda: row(gateway, message_id).status == MessageStatus.SENT, gateway)
    assert ib.bodies_to(KE) == ["token 444"] and row(gateway, message_id).attempts == 2


def test_a_route_sends_one_country_through_infobip(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    gateway = gateway_of(
        make_app(**ib.settings(sms_provider="console", sms_routes={"255": "infobip"}))
    )
    queue(gateway, "to Kenya", to=KE)
    queue(gateway, "to Tanzania", to=TZ)
    assert ib.bodies_to(TZ) == ["to Tanzania"] and ib.bodies_to(KE) == []
    assert [m.provider for m in outbox(gateway)] == ["console", "infobip"]


def test_the_daily_chase_reads_infobip_logs(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    app = make_app(**ib.settings())
    gateway = gateway_of(app)
    message = send(app)
    ib.set_status(ib.messages[0]["messageId"], "DELIVERED_TO_HANDSET")
    with gateway.db.transaction() as session:
        stored = session.get(OutboundMessage, message.id)
        assert stored is not None
        stored.sent_at = utcnow() - timedelta(hours=2)
    assert reports.chase(gateway)["updated"] == 1
    assert row(gateway, message.id or 0).status == MessageStatus.DELIVERED


# -- delivery reports ----------------------------------------------------------------------


def test_a_delivery_report_marks_the_message_delivered_and_a_replay_changes_nothing(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    app = make_app(**ib.settings())
    client = app.test_client()
    message = send(app)
    report = ib.delivery_report(ib.messages[0])
    response = client.post(ib.report_path(), json=report)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "recorded": 1, "ignored": 0}
    first = row(gateway_of(app), message.id or 0)
    assert first.status == MessageStatus.DELIVERED
    assert first.status_reason == "infobip DELIVERED_TO_HANDSET"
    assert client.post(ib.report_path(), json=report).status_code == 200
    assert row(gateway_of(app), message.id or 0).delivered_at == first.delivered_at


def test_an_undeliverable_report_keeps_the_error(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    app = make_app(**ib.settings())
    message = send(app)
    report = ib.delivery_report(ib.messages[0], "UNDELIVERABLE_NOT_DELIVERED")
    assert app.test_client().post(ib.report_path(), json=report).status_code == 200
    stored = row(gateway_of(app), message.id or 0)
    assert stored.status == MessageStatus.UNDELIVERABLE
    assert stored.status_reason == "infobip UNDELIVERABLE_NOT_DELIVERED EC_ABSENT_SUBSCRIBER"


def test_a_report_for_a_send_whose_answer_was_lost_finds_our_message_by_its_id(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    app = make_app(**ib.settings(), sms_timeout_seconds=1.0, sms_reconcile_after_seconds=60)
    ib.script(["slow"])
    message = send(app)
    assert message.status == MessageStatus.SENDING and message.provider_message_id is None
    report = ib.delivery_report(ib.messages[0], "PENDING_ENROUTE")
    assert app.test_client().post(ib.report_path(), json=report).get_json()["recorded"] == 1
    stored = row(gateway_of(app), message.id or 0)
    assert stored.status == MessageStatus.SENT and stored.next_attempt_at is None
    assert stored.provider_message_id == ib.messages[0]["messageId"]


def test_a_report_about_no_message_of_ours_is_acknowledged_and_ignored(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    app = make_app(**ib.settings())
    report = {"results": [{"messageId": "somebody-elses", "status": status("EXPIRED_EXPIRED")}]}
    response = app.test_client().post(ib.report_path(), json=report)
    assert response.status_code == 200 and response.get_json()["ignored"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/sms/infobip/delivery",
        "/sms/infobip/wrong-token/delivery",
        f"/sms/infobip/{CALLBACK_TOKEN}x/delivery",
        "/sms/infobip",
        "/sms/infobip/wrong-token",
    ],
)
def test_a_wrong_or_missing_path_token_is_403_and_changes_nothing(
    make_app: Callable[..., Flask], ib: FakeInfobip, path: str
) -> None:
    app = make_app(**ib.settings())
    message = send(app)
    response = app.test_client().post(path, json=ib.delivery_report(ib.messages[0]))
    assert response.status_code == 403 and response.get_json()["error"] == "forbidden"
    stored = row(gateway_of(app), message.id or 0)
    assert stored.status == MessageStatus.SENT and stored.delivered_at is None


@pytest.mark.parametrize("path", ["/sms/infobip/anything/delivery", "/sms/infobip/anything"])
def test_without_a_callback_token_the_web_hooks_are_404(
    make_app: Callable[..., Flask], ib: FakeInfobip, path: str
) -> None:
    app = make_app(**ib.settings(infobip_callback_token=None))
    response = app.test_client().post(path, json=FakeInfobip.inbound(("m1", "254711000001", "BAL")))
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_an_unknown_web_hook_route_is_404(make_app: Callable[..., Flask], ib: FakeInfobip) -> None:
    client = make_app(**ib.settings()).test_client()
    assert client.post(f"/sms/infobip/{CALLBACK_TOKEN}/status", json={}).status_code == 404
    assert client.post("/sms/pigeon", json={}).status_code == 404


BAD_REPORTS: list[tuple[Any, str]] = [
    (b"not json", ""),
    (b'{"results": [', ""),
    (b"[]", ""),
    (b'"results"', ""),
    (b"\xff\xfe{}", ""),
    (b'{"results": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", ""),
    ({"results": 1}, "results"),
    ({"results": []}, "results"),
    ({"results": ["x"]}, "results"),
    ({"results": [{"status": status("DELIVERED_TO_HANDSET")}]}, "results[0].messageId"),
    (
        {"results": [{"messageId": 7, "status": status("DELIVERED_TO_HANDSET")}]},
        "results[0].messageId",
    ),
    (
        {"results": [{"messageId": "m\u0000", "status": status("EXPIRED_EXPIRED")}]},
        "results[0].messageId",
    ),
    (
        {"results": [{"messageId": "m\ud800", "status": status("EXPIRED_EXPIRED")}]},
        "results[0].messageId",
    ),
    (
        {"results": [{"messageId": "m" * 300, "status": status("EXPIRED_EXPIRED")}]},
        "results[0].messageId",
    ),
    ({"results": [{"messageId": "m1"}]}, "results[0].status"),
    ({"results": [{"messageId": "m1", "status": "DELIVERED"}]}, "results[0].status"),
    ({"results": [{"messageId": "m1", "status": {"groupName": "EXPLODED"}}]}, "results[0].status"),
    (b'{"results": [{"messageId": "m1", "status": {"groupId": ' + b"9" * 5000 + b"}}]}", ""),
    ({"results": [{"messageId": "m1", "status": {"groupId": True}}]}, "results[0].status"),
    (
        {"results": [{"messageId": "m1", "status": status("EXPIRED_EXPIRED"), "error": "bad"}]},
        "results[0].error",
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD_REPORTS)
def test_bad_reports_get_a_clear_400_and_change_nothing(
    make_app: Callable[..., Flask], ib: FakeInfobip, body: Any, field: str
) -> None:
    app = make_app(**ib.settings())
    message = send(app)
    # Refused as a whole, even when the bad entry comes after a good one.
    if isinstance(body, dict) and isinstance(body["results"], list) and body["results"]:
        good = ib.delivery_report(ib.messages[0])["results"][0]
        body = {"results": [good, *body["results"]]}
        field = field.replace("results[0]", "results[1]")
    response = _post(app, ib.report_path(), body)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_input"
    assert response.get_json().get("field", "") == field
    assert row(gateway_of(app), message.id or 0).status == MessageStatus.SENT


def test_a_huge_report_is_refused_before_it_is_read(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    app = make_app(**ib.settings())
    response = _post(app, ib.report_path(), {"results": [{"messageId": "m" * 300_000}]})
    assert response.status_code == 413 and response.get_json()["error"]


def _post(app: Flask, path: str, body: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return app.test_client().post(path, data=data, content_type="application/json")


# -- inbound messages ----------------------------------------------------------------------


def test_an_inbound_command_is_answered_through_the_outbox_once(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    app = ussd_app(make_app, **ib.settings())
    with gw(app).db.session() as session:
        one_account(session, gw(app), "en")
    pushed = FakeInfobip.inbound(("817790313235066447", "254711000001", "BAL 10000004"))
    first = app.test_client().post(ib.inbound_path(), json=pushed)
    assert first.status_code == 200 and first.get_json()["status"] == "queued"
    again = app.test_client().post(ib.inbound_path(), json=pushed)
    assert again.get_json() == {"status": "repeated", "message_id": first.get_json()["message_id"]}
    (reply,) = ib.bodies_to(KNOWN)
    assert reply.startswith("Account 10000004: 12.5 days left")


def test_a_batch_of_inbound_messages_gets_one_reply_each(
    make_app: Callable[..., Flask], ib: FakeInfobip
) -> None:
    app = ussd_app(make_app, **ib.settings())
    with gw(app).db.session() as session:
        one_account(session, gw(app), "en")
    pushed = FakeInfobip.inbound(("m1", "254711000001", "BAL"), ("m2", "254711000001", "HELP"))
    response = app.test_client().post(ib.inbound_path(), json=pushed)
    assert response.status_code == 200
    assert [m["status"] for m in response.get_json()["messages"]] == ["queued", "queued"]
    assert len(ib.bodies_to(KNOWN)) == 2


@pytest.mark.parametrize("text", ["BAL\u0000 10000004", "BAL \ud800", "\ud83d\ude00" * 2000, ""])
def test_an_inbound_text_nobody_can_store_still_gets_an_answer(
    make_app: Callable[..., Flask], ib: FakeInfobip, text: str
) -> None:
    app = ussd_app(make_app, **ib.settings())
    with gw(app).db.session() as session:
        one_account(session, gw(app), "en")
    response = _post(app, ib.inbound_path(), FakeInfobip.inbound(("m1", "254711000001", text)))
    assert response.status_code == 200 and len(ib.bodies_to(KNOWN)) == 1


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"messageId": "m1", "text": "BAL"}, "results[0].from"),
        ({"messageId": "m1", "from": "12", "text": "BAL"}, "results[0].from"),
        ({"messageId": "m1", "from": 254711000001, "text": "BAL"}, "results[0].from"),
        ({"from": "254711000001", "text": "BAL"}, "results[0].messageId"),
        ({"messageId": "m\u0000", "from": "254711000001", "text": "BAL"}, "results[0].messageId"),
        ({"messageId": "m1", "from": "254711000001", "text": ["BAL"]}, "results[0].text"),
    ],
)
def test_a_malformed_inbound_message_gets_a_clear_error_and_no_reply(
    make_app: Callable[..., Flask], ib: FakeInfobip, entry: dict[str, Any], field: str
) -> None:
    app = make_app(**ib.settings())
    response = _post(app, ib.inbound_path(), {"results": [entry]})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_input"
    assert response.get_json()["field"] == field
    with gw(app).db.session() as session:
        assert session.exec(select(OutboundMessage)).first() is None


@pytest.mark.parametrize("body", [b"", b"{}", b'{"results": {}}', b"\x00"])
def test_an_unreadable_inbound_push_is_400_and_a_wrong_token_403(
    make_app: Callable[..., Flask], ib: FakeInfobip, body: bytes
) -> None:
    app = make_app(**ib.settings())
    assert _post(app, ib.inbound_path(), body).status_code == 400
    pushed = FakeInfobip.inbound(("m1", "254711000001", "BAL"))
    assert _post(app, ib.inbound_path("wrong"), pushed).status_code == 403
    assert ib.bodies_to(KNOWN) == []
