"""The providers through their real SDKs, against loopback stand-ins of the providers' APIs."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest

from paygo.errors import ConfigurationError
from paygo.messaging.providers import OutcomeUnknown, Providers, SendRefused
from paygo.messaging.providers.africastalking import AfricasTalking, parse_send_reply
from paygo.messaging.providers.console import Console
from paygo.messaging.providers.twilio import Twilio
from paygo.models import MessageStatus, utcnow
from paygo.settings import Settings, load_settings
from tests.fakes.at_api import FakeAfricasTalking
from tests.fakes.twilio_api import FakeTwilio
from tests.messaging_helpers import KE, TZ


def _settings(**values: Any) -> Settings:
    return Settings(sms_timeout_seconds=1.0, public_base_url="https://gw.example.org", **values)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- Africa's Talking ----------------------------------------------------------------------


def test_africastalking_send_returns_the_message_id(at: FakeAfricasTalking) -> None:
    accepted = AfricasTalking(_settings(**at.settings())).send(
        message_id=1, recipient=KE, body="Your token: 123 456 789"
    )
    assert accepted.provider_message_id == at.accepted[0]["id"]
    assert accepted.status == MessageStatus.SENT
    assert at.bodies_to(KE) == ["Your token: 123 456 789"]


def test_africastalking_reply_with_a_charset_is_read_although_the_sdk_returns_a_str(
    at: FakeAfricasTalking,
) -> None:
    provider = AfricasTalking(_settings(**at.settings()))
    raw = provider.service.send("hi", [KE], timeout=provider.timeout)
    assert isinstance(raw, str)  # the SDK's quirk this provider handles
    assert parse_send_reply(raw, KE).provider_message_id == at.accepted[-1]["id"]


def test_africastalking_sender_id_is_sent_when_set(at: FakeAfricasTalking) -> None:
    AfricasTalking(_settings(**at.settings(), at_sender_id="SUNPOWER")).send(
        message_id=1, recipient=KE, body="hi"
    )
    assert at.accepted[0]["from"] == "SUNPOWER"


@pytest.mark.parametrize("code", [403, 406, 409])
def test_africastalking_refusing_the_number_is_permanent(at: FakeAfricasTalking, code: int) -> None:
    at.recipient_codes[KE] = code
    with pytest.raises(SendRefused) as caught:
        AfricasTalking(_settings(**at.settings())).send(message_id=1, recipient=KE, body="x")
    assert caught.value.permanent and str(code) in caught.value.reason
    assert at.accepted == []


def test_africastalking_insufficient_balance_is_worth_retrying(at: FakeAfricasTalking) -> None:
    at.recipient_codes[KE] = 405
    with pytest.raises(SendRefused) as caught:
        AfricasTalking(_settings(**at.settings())).send(message_id=1, recipient=KE, body="x")
    assert not caught.value.permanent and "InsufficientBalance" in caught.value.reason


def test_africastalking_503_is_refused_and_worth_retrying(at: FakeAfricasTalking) -> None:
    at.script(["down"])
    with pytest.raises(SendRefused) as caught:
        AfricasTalking(_settings(**at.settings())).send(message_id=1, recipient=KE, body="x")
    assert not caught.value.permanent and at.accepted == []


def test_africastalking_wrong_api_key_is_retried_not_dead_lettered(at: FakeAfricasTalking) -> None:
    settings = _settings(**{**at.settings(), "at_api_key": "wrong"})
    with pytest.raises(SendRefused) as caught:
        AfricasTalking(settings).send(message_id=1, recipient=KE, body="x")
    assert not caught.value.permanent and "authentication" in caught.value.reason


def test_africastalking_read_timeout_is_an_unknown_outcome(at: FakeAfricasTalking) -> None:
    at.script(["slow"])
    with pytest.raises(OutcomeUnknown):
        AfricasTalking(_settings(**at.settings())).send(message_id=1, recipient=KE, body="x")
    assert at.bodies_to(KE) == ["x"]  # it did arrive: resending blindly would double it


def test_africastalking_connection_dropped_after_sending_is_an_unknown_outcome(
    at: FakeAfricasTalking,
) -> None:
    at.script(["drop"])
    with pytest.raises(OutcomeUnknown):
        AfricasTalking(_settings(**at.settings())).send(message_id=1, recipient=KE, body="x")


def test_africastalking_unreachable_is_refused_and_worth_retrying() -> None:
    settings = _settings(
        sms_provider="africastalking",
        at_username="sandbox",
        at_api_key="k",
        at_api_base_url=f"http://127.0.0.1:{_closed_port()}",
    )
    with pytest.raises(SendRefused) as caught:
        AfricasTalking(settings).send(message_id=1, recipient=KE, body="x")
    assert not caught.value.permanent


def test_africastalking_sdk_rejects_a_number_that_is_not_e164_before_sending(
    at: FakeAfricasTalking,
) -> None:
    with pytest.raises(SendRefused) as caught:
        AfricasTalking(_settings(**at.settings())).send(
            message_id=1, recipient="0711000001", body="x"
        )
    assert caught.value.permanent and at.requests == 0


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("<html>oops</html>", OutcomeUnknown),
        ({"unexpected": True}, OutcomeUnknown),
        ({"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}, SendRefused),
        (
            {
                "SMSMessageData": {
                    "Recipients": [{"statusCode": 101, "number": KE, "messageId": "None"}]
                }
            },
            OutcomeUnknown,
        ),
    ],
)
def test_africastalking_odd_replies_never_count_as_sent(reply: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_send_reply(reply, KE)


# -- Twilio --------------------------------------------------------------------------------


def test_twilio_send_returns_the_sid_and_asks_for_status_callbacks(tw: FakeTwilio) -> None:
    accepted = Twilio(_settings(**tw.settings())).send(message_id=42, recipient=TZ, body="hi")
    assert accepted.provider_message_id == tw.messages[0]["sid"]
    assert tw.messages[0]["status_callback"] == "https://gw.example.org/sms/twilio/status?m=42"
    assert tw.messages[0]["from"] == tw.from_


def test_twilio_uses_the_messaging_service_when_configured(tw: FakeTwilio) -> None:
    settings = _settings(**tw.settings(), twilio_messaging_service_sid="MG" + "a" * 32)
    Twilio(settings).send(message_id=1, recipient=TZ, body="hi")
    assert tw.messages[0]["messaging_service_sid"] == "MG" + "a" * 32


@pytest.mark.parametrize("code", [21211, 21610])
def test_twilio_invalid_or_unsubscribed_number_is_permanent(tw: FakeTwilio, code: int) -> None:
    tw.refuse[TZ] = code
    with pytest.raises(SendRefused) as caught:
        Twilio(_settings(**tw.settings())).send(message_id=1, recipient=TZ, body="x")
    assert caught.value.permanent and str(code) in caught.value.reason


def test_twilio_5xx_is_an_unknown_outcome_settled_by_lookup(tw: FakeTwilio) -> None:
    tw.script(["down"])
    provider = Twilio(_settings(**tw.settings()))
    with pytest.raises(OutcomeUnknown):
        provider.send(message_id=1, recipient=TZ, body="x")
    assert (
        provider.lookup(message_id=1, recipient=TZ, body="x", since=utcnow() - timedelta(minutes=1))
        is None
    )


def test_twilio_wrong_credentials_are_retried(tw: FakeTwilio) -> None:
    settings = _settings(**{**tw.settings(), "twilio_auth_token": "wrong"})
    with pytest.raises(SendRefused) as caught:
        Twilio(settings).send(message_id=1, recipient=TZ, body="x")
    assert not caught.value.permanent


def test_twilio_timeout_then_lookup_finds_the_message(tw: FakeTwilio) -> None:
    tw.script(["slow"])
    provider = Twilio(_settings(**tw.settings()))
    since = utcnow()
    with pytest.raises(OutcomeUnknown):
        provider.send(message_id=1, recipient=TZ, body="token 123")
    found = provider.lookup(message_id=1, recipient=TZ, body="token 123", since=since)
    assert found is not None and found.provider_message_id == tw.messages[0]["sid"]
    assert provider.lookup(message_id=1, recipient=TZ, body="other text", since=since) is None


def test_twilio_fetch_status_maps_onto_our_states(tw: FakeTwilio) -> None:
    provider = Twilio(_settings(**tw.settings()))
    sid = provider.send(message_id=1, recipient=TZ, body="x").provider_message_id
    assert sid is not None
    tw.set_status(sid, "undelivered", 30003)
    report = provider.fetch_status(sid)
    assert report is not None and report.status == MessageStatus.UNDELIVERABLE
    assert report.reason == "twilio undelivered 30003"
    assert provider.fetch_status("SM" + "f" * 32) is None


# -- console, routing, settings ------------------------------------------------------------


def test_console_logs_the_message_and_calls_it_sent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="paygo.sms"):
        accepted = Console(Settings()).send(message_id=7, recipient=KE, body="hello")
    assert accepted.status == MessageStatus.SENT and "hello" in caplog.text


def test_routes_pick_the_provider_by_the_longest_matching_prefix() -> None:
    routes = Providers(
        Settings(sms_provider="console", sms_routes={"254": "africastalking", "2557": "twilio"})
    )
    assert routes.route(KE) == "africastalking"
    assert routes.route("+255754000002") == "twilio"
    assert routes.route("+255654000002") == "console"
    assert routes.route("+15005550006") == "console"


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({"SMS_PROVIDER": "africastalking", "AT_USERNAME": "sandbox"}, "AT_API_KEY"),
        ({"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_AUTH_TOKEN"),
        (
            {"SMS_ROUTES": "255=twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"},
            "TWILIO_FROM",
        ),
        ({"SMS_MAX_ATTEMPTS": "0"}, "SMS_MAX_ATTEMPTS"),
        ({"SMS_RETRY_BASE_SECONDS": "-1"}, "SMS_RETRY_BASE_SECONDS"),
    ],
)
def test_misconfigured_sms_is_refused_at_start_naming_the_setting(
    environ: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"DATABASE_URL": "sqlite://", **environ})
    assert caught.value.setting == missing
