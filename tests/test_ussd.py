"""USSD on Africa's Talking: every menu path in every language, sessions, lockout, bad input."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from sqlmodel import Session, col, select

from paygo.gateway import Gateway
from paygo.models import (
    BackplaneEntry,
    Customer,
    Device,
    Ticket,
    Token,
    UssdSession,
)
from tests.conversation_data import (
    KNOWN,
    NOW,
    OTHER,
    STRANGER,
    account,
    gw,
    nearly_paid,
    one_account,
    paid_off,
    plan,
    set_clock,
    someone_elses,
    tokens,
    two_accounts,
    ussd_app,
    with_deposit_due,
    with_minimum,
    with_tokens,
    wrong_numbers_stored,
)
from tests.golden import check_transcript
from tests.ussd_dialer import UssdDialer

LANGS = ("en", "sw", "fr")
URL = "/ussd/africastalking"


CASES: dict[str, tuple[Callable[[Session, Gateway, str], None], str, list[str]]] = {
    "balance": (one_account, KNOWN, ["1"]),
    "balance_paid_off": (paid_off, KNOWN, ["1"]),
    "choose_account": (two_accounts, KNOWN, ["7", "2", "1"]),
    "last_token": (with_tokens, KNOWN, ["2", "1"]),
    "token_history": (with_tokens, KNOWN, ["2", "2", "98", "0", "3"]),
    "no_tokens": (one_account, KNOWN, ["2", "1"]),
    "pay_buys_days": (one_account, KNOWN, ["3", "abc", "500"]),
    "pay_deposit": (with_deposit_due, KNOWN, ["3", "500"]),
    "pay_below_minimum": (with_minimum, KNOWN, ["3", "20"]),
    "pay_pays_off": (nearly_paid, KNOWN, ["3", "500"]),
    "pay_paid_off": (paid_off, KNOWN, ["3"]),
    "language": (one_account, KNOWN, ["4", "2"]),
    "report_problem": (one_account, KNOWN, ["5", "ab", "Light off since Monday"]),
    "navigation": (one_account, KNOWN, ["2", "0", "9", "3", "00", "1"]),
    "unknown_number": (someone_elses, STRANGER, ["10000005", "10000004", "1"]),
    "lockout": (someone_elses, STRANGER, ["10000012", "10000020", "10000036"]),
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_menu_path_matches_its_transcript(
    make_app: Callable[..., Flask], request: pytest.FixtureRequest, case: str, lang: str
) -> None:
    arrange, phone, inputs = CASES[case]
    app = ussd_app(make_app, lang)
    with gw(app).db.session() as session:
        arrange(session, gw(app), lang)
    dialer = UssdDialer(app.test_client(), phone)
    dialer.dial()
    dialer.answer(*inputs)
    check_transcript(request, "ussd", f"{case}.{lang}", dialer.transcript())


# The sample session and the reply format ----------------------------------------------------


def test_the_providers_sample_session_gets_plain_con_and_end_replies(
    app: Flask, session: Session, gateway: Gateway, shared_dir: Any
) -> None:
    set_clock(app, NOW)
    made = account(session, gateway, phone="+254711000001")
    tokens(session, made, 1)
    sample = json.loads((shared_dir / "providers" / "at_ussd.json").read_text())
    client = app.test_client()
    bodies = []
    for hop in sample["hops"]:
        response = client.post(URL, data=hop)
        assert response.status_code == 200 and response.mimetype == "text/plain"
        bodies.append(response.get_data(as_text=True))
    assert bodies[0].startswith("CON SunPower - account 10000004\n1. My balance")
    assert bodies[1].startswith("END Account 10000004\nDays left: 12.5")
    assert bodies[2] == bodies[0]  # a hop after the END starts a session cleanly


def test_free_text_may_contain_a_star(app: Flask, session: Session, gateway: Gateway) -> None:
    set_clock(app, NOW)
    account(session, gateway)
    dialer = UssdDialer(app.test_client(), KNOWN)
    dialer.dial()
    dialer.answer("5", "switch broken *again*")
    ticket = session.exec(select(Ticket)).one()
    assert ticket.body == "switch broken *again*" and ticket.phone == KNOWN
    assert dialer.log[-1][1].startswith(f"END Thank you. Your ticket number is {ticket.id}.")


def test_several_inputs_in_one_hop_are_applied_in_turn(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    account(session, gateway)
    dialer = UssdDialer(app.test_client(), KNOWN)
    dialer.dial()
    assert dialer.hop("3*500").startswith("END KES 500 buys 10 days")


def test_many_accounts_are_paginated_without_splitting_one(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    for n in range(9):
        account(session, gateway, on=plan(session, name=f"Solar Home {n} big kit"))
    dialer = UssdDialer(app.test_client(), KNOWN)
    seen = [dialer.dial()]
    while "\n98. " in seen[-1]:
        seen.append(dialer.answer("98"))
    assert len(seen) > 1
    listed = [
        line
        for screen in seen
        for line in screen.splitlines()
        if line[:2].rstrip(".").isdigit() and not line.startswith(("98.", "0.", "00."))
    ]
    assert [int(line.split(".")[0]) for line in listed] == list(range(1, 10))
    assert all(line.endswith("big kit") for line in listed)  # no option cut in two
    assert dialer.answer("9").startswith("CON SunPower - account 10000085")


# Sessions ---------------------------------------------------------------------------------------


def test_without_redis_the_session_lives_in_the_database(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    account(session, gateway)
    dialer = UssdDialer(app.test_client(), KNOWN)
    dialer.dial()
    dialer.answer("2")
    row = session.exec(select(BackplaneEntry)).one()
    record = json.loads(row.value or "")
    assert row.key == f"ussd:{dialer.session_id}" and record["hops"] == 2
    assert record["phone"] == KNOWN and record["state"]["at"] == "tokens"
    assert row.expires_at == NOW + timedelta(seconds=200)


def test_with_redis_the_session_lives_in_redis_with_a_ttl(
    redis_app: Flask, redis_client: redis.Redis
) -> None:
    set_clock(redis_app, NOW)
    with gw(redis_app).db.session() as session:
        account(session, gw(redis_app))
        dialer = UssdDialer(redis_app.test_client(), KNOWN)
        dialer.dial()
        dialer.answer("2")
        assert session.exec(select(UssdSession)).first() is None
    key = f"paygo:ussd:{dialer.session_id}"
    assert json.loads(redis_client.get(key) or b"{}")["state"]["at"] == "tokens"
    assert 180 < redis_client.ttl(key) <= 200


def test_an_expired_database_session_starts_again_at_the_main_menu(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    account(session, gateway)
    dialer = UssdDialer(app.test_client(), KNOWN)
    first = dialer.dial()
    dialer.answer("2")
    set_clock(app, NOW + timedelta(seconds=201))
    assert dialer.answer("1") == first


def test_an_expired_redis_session_starts_again_at_the_main_menu(
    make_app: Callable[..., Flask], redis_url: str, redis_client: redis.Redis
) -> None:
    app = ussd_app(make_app, redis_url=redis_url, ussd_session_ttl_seconds=1)
    with gw(app).db.session() as session:
        account(session, gw(app))
    dialer = UssdDialer(app.test_client(), KNOWN)
    first = dialer.dial()
    dialer.answer("2")
    key = f"paygo:ussd:{dialer.session_id}"
    redis_client.pexpire(key, 1)  # the TTL runs out
    for _ in range(100):
        if not redis_client.exists(key):
            break
        time.sleep(0.002)
    assert dialer.answer("1") == first


def test_an_unknown_session_with_text_starts_at_the_main_menu(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    account(session, gateway)
    dialer = UssdDialer(app.test_client(), KNOWN)
    assert dialer.hop("3*500*1").startswith("CON SunPower - account 10000004\n1. My balance")


def test_a_repeated_hop_gets_the_same_screen_and_does_nothing_twice(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    account(session, gateway)
    dialer = UssdDialer(app.test_client(), KNOWN)
    dialer.dial()
    end = dialer.answer("5", "No light at all")
    assert dialer.hop(dialer.text) == end
    assert len(session.exec(select(Ticket)).all()) == 1


def test_a_failure_inside_becomes_an_end_screen_in_the_customers_language(
    app: Flask, session: Session, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    set_clock(app, NOW)
    made = account(session, gateway, lang="sw")
    dialer = UssdDialer(app.test_client(), KNOWN)
    dialer.dial()
    dialer.answer("5")
    session.delete(made)  # gone between two hops: the ticket cannot point at it
    session.commit()
    with caplog.at_level(logging.ERROR):
        screen = dialer.answer("Taa haiwaki kabisa")
    assert screen == ("END Samahani, kuna hitilafu. Tafadhali jaribu tena baada ya dakika moja.")
    assert any(dialer.session_id in r.getMessage() for r in caplog.records)
    assert dialer.answer("1").startswith("CON ")  # the next hop starts cleanly
    assert session.exec(select(Ticket)).first() is None


def test_the_language_chosen_is_remembered_for_the_next_session(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    made = account(session, gateway)
    first = UssdDialer(app.test_client(), KNOWN)
    first.dial()
    first.answer("4", "3")
    customer = session.get(Customer, made.customer_id)
    assert customer is not None
    session.refresh(customer)
    assert customer.language == "fr"
    session.rollback()  # SQLite: the app's next hop needs the write lock
    assert (
        UssdDialer(app.test_client(), KNOWN)
        .dial()
        .startswith("CON SunPower - compte 10000004\n1. Mon solde")
    )


def test_the_last_token_again_never_issues_a_new_one(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    made = account(session, gateway)
    tokens(session, made, 3)
    dialer = UssdDialer(app.test_client(), KNOWN)
    dialer.dial()
    assert "370 370 367" in dialer.answer("2", "1")
    assert len(session.exec(select(Token)).all()) == 3
    device = session.get(Device, made.device_id)
    assert device is not None
    session.refresh(device)
    assert device.token_count == 3


def test_a_quote_changes_nothing_on_the_account(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    made = account(session, gateway)
    before = (made.total_paid, made.credit_until, made.remainder)
    dialer = UssdDialer(app.test_client(), KNOWN)
    dialer.dial()
    dialer.answer("3", "1000")
    session.refresh(made)
    assert (made.total_paid, made.credit_until, made.remainder) == before


# Lockout ----------------------------------------------------------------------------------------


def _wrong_numbers(app: Flask, phone: str, count: int) -> str:
    dialer = UssdDialer(app.test_client(), phone)
    dialer.dial()
    return dialer.answer(*["10000012"] * count)


@pytest.mark.parametrize("store", ["database", "redis"])
def test_three_wrong_numbers_lock_the_phone_for_a_while(
    make_app: Callable[..., Flask], redis_url: str, redis_client: redis.Redis, store: str
) -> None:
    app = ussd_app(
        make_app,
        **({"redis_url": redis_url} if store == "redis" else {}),
        lookup_lockout_seconds=3600,
    )
    with gw(app).db.session() as session:
        made = account(session, gw(app), phone=OTHER)
    assert _wrong_numbers(app, STRANGER, 2).startswith("CON We found no account")
    assert _wrong_numbers(app, STRANGER, 1).startswith("END Too many wrong account numbers")
    dialer = UssdDialer(app.test_client(), STRANGER)
    assert dialer.dial().startswith("END Too many wrong account numbers")
    assert UssdDialer(app.test_client(), "+254733000003").dial().startswith("CON Welcome")
    set_clock(app, NOW + timedelta(seconds=3601))
    dialer = UssdDialer(app.test_client(), STRANGER)
    dialer.dial()
    assert dialer.answer(made.number).startswith("CON SunPower - account")


def test_wrong_numbers_are_stored_for_the_lockout_without_redis(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    _wrong_numbers(app, STRANGER, 2)
    assert wrong_numbers_stored(session, STRANGER) == [NOW] * 2


def test_a_number_failing_its_check_digit_is_refused_without_a_lookup(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    dialer = UssdDialer(app.test_client(), STRANGER)
    dialer.dial()
    screen = dialer.answer("10000005")
    assert screen.startswith("CON That account number is not right.\nWelcome to SunPower.")
    assert wrong_numbers_stored(session, STRANGER) == []


# Bad requests: a clean END, never an HTTP error ------------------------------------------------

GOOD = {
    "sessionId": "ATUid_bad",
    "serviceCode": "*384*4321#",
    "phoneNumber": KNOWN,
    "networkCode": "63902",
    "text": "",
}
SORRY = "END Sorry, something went wrong. Please try again in a minute."


@pytest.mark.parametrize(
    "form",
    [
        {k: v for k, v in GOOD.items() if k != "sessionId"},
        {k: v for k, v in GOOD.items() if k != "phoneNumber"},
        {**GOOD, "phoneNumber": "not-a-phone"},
        {**GOOD, "phoneNumber": "+2547" + "1" * 60},
        {**GOOD, "sessionId": "x" * 500},
        {**GOOD, "text": "1" * 5000},
        {**GOOD, "text": "*".join(["1"] * 40)},
        {},
    ],
    ids=[
        "no-session",
        "no-phone",
        "bad-phone",
        "huge-phone",
        "huge-session",
        "huge-text",
        "many-inputs",
        "empty",
    ],
)
def test_a_malformed_hop_gets_a_clean_end(
    app: Flask, session: Session, gateway: Gateway, form: dict[str, str]
) -> None:
    account(session, gateway)
    client = app.test_client()
    if form.get("text", "").count("*") > 10:  # many inputs need a live session first
        client.post(URL, data={**form, "text": ""})
    response = client.post(URL, data=form)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == SORRY


def test_a_body_over_the_size_limit_gets_a_clean_end(app: Flask) -> None:
    response = app.test_client().post(URL, data={**GOOD, "text": "9" * 300_000})
    assert response.status_code == 200 and response.get_data(as_text=True) == SORRY


def test_a_json_body_instead_of_a_form_gets_a_clean_end(app: Flask) -> None:
    response = app.test_client().post(URL, json=GOOD)
    assert response.status_code == 200 and response.get_data(as_text=True) == SORRY


# End-of-session notifications --------------------------------------------------------------------

EVENTS = URL + "/events"


def test_the_end_of_session_notification_is_stored_with_the_session(
    app: Flask, session: Session, gateway: Gateway, shared_dir: Any
) -> None:
    set_clock(app, NOW)
    account(session, gateway)
    event = json.loads((shared_dir / "providers" / "at_ussd_event.json").read_text())["body"]
    dialer = UssdDialer(app.test_client(), KNOWN, session_id=event["sessionId"])
    dialer.dial()
    response = app.test_client().post(EVENTS, data={**event, "errorMessage": "x" * 1000})
    assert response.status_code == 200, response.get_json()
    again = app.test_client().post(EVENTS, data={**event, "errorMessage": "x" * 1000})
    assert again.status_code == 200
    row = session.exec(select(UssdSession)).one()
    assert (row.status, row.hops, row.duration_ms, row.state) == ("Incomplete", 2, 30311, None)
    assert row.error == "x" * 300


def test_a_notification_for_an_unknown_session_is_stored_too(app: Flask, session: Session) -> None:
    response = app.test_client().post(
        EVENTS,
        data={
            "sessionId": "ATUid_redis_only",
            "phoneNumber": KNOWN,
            "serviceCode": "*384*4321#",
            "status": "Success",
            "hopsCount": "3",
            "durationInMillis": "12000",
        },
    )
    assert response.status_code == 200
    row = session.exec(select(UssdSession)).one()
    assert (row.session_id, row.status, row.hops, row.error) == (
        "ATUid_redis_only",
        "Success",
        3,
        None,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sessionId": ""}, "sessionId"),
        ({"status": "Exploded"}, "status"),
        ({"hopsCount": "three"}, "hopsCount"),
        ({"durationInMillis": "-5"}, "durationInMillis"),
        ({"durationInMillis": "9" * 40}, "durationInMillis"),
        ({"phoneNumber": "nobody"}, "phone"),
    ],
)
def test_a_malformed_notification_gets_a_clear_error_and_stores_nothing(
    app: Flask, session: Session, change: dict[str, str], field: str
) -> None:
    form = {
        "sessionId": "ATUid_x",
        "phoneNumber": KNOWN,
        "status": "Failed",
        "hopsCount": "1",
        "durationInMillis": "10",
        **change,
    }
    response = app.test_client().post(EVENTS, data=form)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_input" and field in json.dumps(body)
    assert session.exec(select(col(UssdSession.id))).first() is None


def test_a_huge_notification_gets_a_clear_error(app: Flask) -> None:
    response = app.test_client().post(EVENTS, data={"sessionId": "x", "input": "1" * 300_000})
    assert response.status_code == 413 and response.get_json()["error"]
