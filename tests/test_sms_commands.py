"""SMS commands on Africa's Talking and Twilio: every command in every language, replies
through the outbox, Twilio signatures, replays and bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator

from paygo.models import Customer, MessageStatus, OutboundMessage
from tests.conversation_data import (
    KNOWN,
    NOW,
    STRANGER,
    gw,
    one_account,
    paid_off,
    set_clock,
    someone_elses,
    two_accounts,
    ussd_app,
    with_tokens,
)
from tests.golden import check_transcript

AT, TWILIO = "/sms/africastalking", "/sms/twilio"
TWILIO_TOKEN = "twilio-auth-token-0123456789"
TWILIO_URL = "https://gateway.example.org/sms/twilio"  # PUBLIC_BASE_URL + path
KEYWORDS = {
    "en": {"balance": "BAL", "token": "TOKEN", "pay": "PAY", "help": "HELP", "lang": "LANG"},
    "sw": {"balance": "SALIO", "token": "TOKENI", "pay": "LIPA", "help": "MSAADA", "lang": "LUGHA"},
    "fr": {"balance": "SOLDE", "token": "CODE", "pay": "PAYER", "help": "AIDE", "lang": "LANGUE"},
}
SWITCH_TO = {"en": "sw", "sw": "fr", "fr": "en"}
_ids = iter(range(1, 10**6))


def nobody(s: Session, g: Any, lang: str) -> None:
    """No customer at all."""


CASES: dict[str, tuple[Callable[..., None], str, list[str]]] = {
    "balance": (one_account, KNOWN, ["{balance}"]),
    "balance_of_one_of_several": (two_accounts, KNOWN, ["{balance} 1000 0012"]),
    "several_accounts": (two_accounts, KNOWN, ["{balance}"]),
    "balance_paid_off": (paid_off, KNOWN, ["{balance}"]),
    "token": (with_tokens, KNOWN, ["{token}"]),
    "no_token": (one_account, KNOWN, ["{token}"]),
    "pay": (one_account, KNOWN, ["{pay}"]),
    "pay_paid_off": (paid_off, KNOWN, ["{pay}"]),
    "help": (one_account, KNOWN, ["{help}"]),
    "unknown_text": (one_account, KNOWN, ["where is my light?"]),
    "language": (one_account, KNOWN, ["{lang} {switch}", "{balance}"]),
    "language_unknown": (one_account, KNOWN, ["{lang} klingon"]),
    "unregistered": (someone_elses, STRANGER, ["{balance}", "{lang} sw"]),
    "unregistered_with_account": (someone_elses, STRANGER, ["{balance} 10000004"]),
    "bad_number": (one_account, KNOWN, ["{balance} 12345"]),
    "lockout": (
        someone_elses,
        STRANGER,
        ["{token} 10000012", "{token} 10000020", "{token} 10000036", "{token} 10000004"],
    ),
    "nothing_known": (nobody, STRANGER, ["{help}"]),
}


def send_at(app: Flask, phone: str, text: str, message_id: str | None = None) -> Any:
    response = app.test_client().post(
        AT,
        data={
            "from": phone,
            "to": "21345",
            "text": text,
            "date": "2026-11-20 10:15:02",
            "id": message_id or f"at-{next(_ids)}",
            "linkId": "",
            "networkCode": "63902",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def reply_body(app: Flask, message_id: int) -> str:
    with gw(app).db.session() as session:
        message = session.get(OutboundMessage, message_id)
        assert message is not None
        return message.body


@pytest.mark.parametrize("lang", ["en", "sw", "fr"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_command_matches_its_transcript(
    make_app: Callable[..., Flask], request: pytest.FixtureRequest, case: str, lang: str
) -> None:
    arrange, phone, messages = CASES[case]
    app = ussd_app(make_app, "en")
    with gw(app).db.session() as session:
        arrange(session, gw(app), lang)
    lines = []
    for template in messages:
        text = template.format(switch=SWITCH_TO[lang], **KEYWORDS[lang])
        body = reply_body(app, send_at(app, phone, text)["message_id"])
        assert len(body) <= 160 and body.isascii()
        lines.append(f">>> {text}\n{body}\n")
    check_transcript(request, "sms", f"{case}.{lang}", "".join(lines))


# Africa's Talking ---------------------------------------------------------------------------


def test_the_providers_sample_gets_a_reply_in_the_outbox(
    app: Flask, session: Session, shared_dir: Path
) -> None:
    sample = json.loads((shared_dir / "providers" / "at_sms_inbound.json").read_text())["body"]
    one_account(session, gw(app), "en")
    response = app.test_client().post(AT, data={**sample, "text": "bal 10000004"})
    assert response.status_code == 200 and response.get_json()["status"] == "queued"
    message = session.exec(select(OutboundMessage)).one()
    # The messaging dispatcher takes it from here (inline jobs: sent on the console).
    assert (message.recipient, message.kind) == ("+254711000001", "reply")
    assert message.body.startswith("Account 10000004: ")


def test_a_replayed_message_is_answered_once(app: Flask, session: Session) -> None:
    one_account(session, gw(app), "en")
    first = send_at(app, KNOWN, "BAL", message_id="at-same")
    again = send_at(app, KNOWN, "BAL", message_id="at-same")
    assert (first["status"], again["status"]) == ("queued", "repeated")
    assert first["message_id"] == again["message_id"]
    assert len(session.exec(select(OutboundMessage)).all()) == 1


@pytest.mark.parametrize(
    "text", [" bal ", "Bal", "b a l", "BAL10000004", "bal 1000 0004", "salio", "SoLdE"]
)
def test_commands_ignore_case_and_spaces_in_every_language(
    app: Flask, session: Session, text: str
) -> None:
    set_clock(app, NOW)
    one_account(session, gw(app), "en")
    body = reply_body(app, send_at(app, KNOWN, text)["message_id"])
    assert body.startswith("Account 10000004: 12.5 days left")


def test_the_language_command_is_remembered(app: Flask, session: Session) -> None:
    one_account(session, gw(app), "en")
    body = reply_body(app, send_at(app, KNOWN, "lugha kiswahili")["message_id"])
    assert body == "Sawa: tutakuandikia kwa Kiswahili."
    customer = session.exec(select(Customer).where(Customer.phone == KNOWN)).one()
    assert customer.language == "sw"
    session.rollback()
    assert reply_body(app, send_at(app, KNOWN, "BAL")["message_id"]).startswith("Akaunti")


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"text": "BAL", "id": "a1"}, "from"),
        ({"from": KNOWN, "text": "BAL"}, "id"),
        ({"from": "12", "text": "BAL", "id": "a2"}, "phone"),
        ({"from": "+2547" + "1" * 80, "text": "BAL", "id": "a3"}, "from"),
        ({"from": KNOWN, "text": "BAL", "id": "i" * 300}, "id"),
        ({"from": KNOWN, "text": "BAL", "id": "a\x00"}, "id"),
        ({"from": KNOWN + "\x00", "text": "BAL", "id": "a4"}, "from"),
    ],
)
def test_a_malformed_inbound_message_gets_a_clear_error_and_no_reply(
    app: Flask, session: Session, form: dict[str, str], field: str
) -> None:
    response = app.test_client().post(AT, data=form)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_input"
    assert field in json.dumps(response.get_json())
    assert session.exec(select(OutboundMessage)).first() is None


def test_a_huge_message_gets_the_help_text_and_a_huge_body_a_clear_error(
    app: Flask, session: Session
) -> None:
    one_account(session, gw(app), "en")
    body = reply_body(app, send_at(app, KNOWN, "x" * 50_000)["message_id"])
    assert body.startswith("SunPower: send BAL for your balance")
    response = app.test_client().post(AT, data={"from": KNOWN, "id": "a", "text": "x" * 300_000})
    assert response.status_code == 413 and response.get_json()["error"]


# Twilio --------------------------------------------------------------------------------------


def twilio_app(make_app: Callable[..., Flask], **overrides: Any) -> Flask:
    return ussd_app(make_app, twilio_auth_token=TWILIO_TOKEN, **overrides)


def twilio_form(body: str = "TOKEN", sid: str = "SM0001") -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC0123",
        "From": KNOWN,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }


def signed(form: dict[str, str], url: str = TWILIO_URL, token: str = TWILIO_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, form))


def test_a_signed_twilio_message_gets_the_reply_as_twiml_once(
    make_app: Callable[..., Flask],
) -> None:
    app = twilio_app(make_app)
    with gw(app).db.session() as session:
        with_tokens(session, gw(app), "en")
    form = twilio_form()
    headers = {"X-Twilio-Signature": signed(form)}
    response = app.test_client().post(TWILIO, data=form, headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/xml"
    xml = response.get_data(as_text=True)
    assert "<Message>Account 10000004, token of 20/11/2026 (12 days): 481 481 468</Message>" in xml
    replay = app.test_client().post(TWILIO, data=form, headers=headers)
    assert replay.status_code == 200 and "<Message>" not in replay.get_data(as_text=True)
    with gw(app).db.session() as session:
        message = session.exec(select(OutboundMessage)).one()
    # Twilio sends the TwiML reply itself: the outbox records it as sent, not to send.
    assert (message.status, message.provider, message.recipient) == (
        MessageStatus.SENT,
        "twilio",
        KNOWN,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": ""},
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        {"X-Twilio-Signature": signed(twilio_form(), url="http://localhost/sms/twilio")},
        {"X-Twilio-Signature": signed(twilio_form(), token="another-token")},
        {"X-Twilio-Signature": signed(twilio_form(body="BAL"))},
    ],
    ids=["missing", "empty", "garbage", "other-url", "other-token", "other-body"],
)
def test_a_missing_or_wrong_twilio_signature_is_refused_and_nothing_happens(
    make_app: Callable[..., Flask], headers: dict[str, str]
) -> None:
    app = twilio_app(make_app)
    with gw(app).db.session() as session:
        one_account(session, gw(app), "en")
    response = app.test_client().post(TWILIO, data=twilio_form(), headers=headers)
    assert response.status_code == 403
    with gw(app).db.session() as session:
        assert session.exec(select(OutboundMessage)).first() is None


def test_twilio_is_refused_when_no_auth_token_is_configured(app: Flask) -> None:
    form = twilio_form()
    response = app.test_client().post(
        TWILIO, data=form, headers={"X-Twilio-Signature": signed(form)}
    )
    assert response.status_code == 403


def test_a_signed_twilio_message_without_a_sender_gets_a_clear_error(
    make_app: Callable[..., Flask],
) -> None:
    app = twilio_app(make_app)
    form = {k: v for k, v in twilio_form().items() if k != "From"}
    response = app.test_client().post(
        TWILIO, data=form, headers={"X-Twilio-Signature": signed(form)}
    )
    assert response.status_code == 400 and "From" in response.get_json()["message"]


def test_a_signed_twilio_message_of_huge_text_gets_the_help_text(
    make_app: Callable[..., Flask],
) -> None:
    app = twilio_app(make_app)
    with gw(app).db.session() as session:
        one_account(session, gw(app), "en")
    form = twilio_form(body="?" * 20_000)
    response = app.test_client().post(
        TWILIO, data=form, headers={"X-Twilio-Signature": signed(form)}
    )
    assert response.status_code == 200
    assert "<Message>SunPower: send BAL for your balance" in response.get_data(as_text=True)
