"""M-Pesa Daraja callbacks: C2B validation and confirmation, STK results, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlmodel import Session, select

from paygo.gateway import Gateway
from paygo.models import (
    Account,
    AuditLog,
    OutboundMessage,
    Payment,
    PaymentStatus,
    StkRequest,
    Token,
)
from tests.factories import make_account
from tests.payment_helpers import (
    MpesaPaybill,
    account_numbered,
    count,
    digest,
    ledger,
    payments,
    sample,
)
from tests.queue_helpers import rq_queue

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


@pytest.fixture
def paybill(client: FlaskClient, shared_dir: Path) -> MpesaPaybill:
    return MpesaPaybill(client, shared_dir)


@pytest.fixture
def wanjiku(session: Session, gateway: Gateway) -> Account:
    """The customer of the samples: account 10000018, phone 254711000001."""
    return account_numbered(session, gateway, "10000018", phone="+254711000001")


def test_sample_confirmation_credits_the_account_and_queues_the_receipt(
    client: FlaskClient, session: Session, wanjiku: Account, shared_dir: Path
) -> None:
    reply = client.post(
        "/payments/mpesa/mpesa-token-123/confirmation",
        json=sample(shared_dir, "mpesa_c2b_confirmation.json"),
    )
    assert reply.status_code == 200 and reply.get_json() == ACCEPTED
    [payment] = payments(session)
    assert (payment.status, payment.amount, payment.currency) == ("credited", 15000, "KES")
    assert (payment.account_id, payment.match_rule) == (wanjiku.id, "account_number")
    assert payment.provider_txn_id == "RKTQDM7W6S" and payment.payer_name == "Wanjiku"
    assert json.loads(payment.raw)["TransID"] == "RKTQDM7W6S"
    token = session.exec(select(Token).where(Token.payment_id == payment.id)).one()
    assert token.days == 3
    message = session.exec(select(OutboundMessage)).one()
    assert message.dedupe_key == f"payment:{payment.id}"
    assert message.recipient == "+254711000001" and "10000018" in message.body


def test_hashed_msisdn_with_decimal_amount_and_spaced_reference_is_credited(
    client: FlaskClient, session: Session, wanjiku: Account, shared_dir: Path
) -> None:
    body = {
        **sample(shared_dir, "mpesa_c2b_confirmation_hashed.json"),
        "MSISDN": digest("254711000001"),
    }
    assert (
        client.post("/payments/mpesa/mpesa-token-123/confirmation", json=body).get_json()
        == ACCEPTED
    )
    [payment] = payments(session)
    assert (payment.amount, payment.status) == (100, "credited")
    assert payment.match_rule == "normalised_reference"
    assert payment.payer == digest("254711000001")


def test_repeated_confirmation_is_acknowledged_each_time_and_credited_once(
    paybill: MpesaPaybill, session: Session, wanjiku: Account
) -> None:
    body = paybill.body("10000018", receipt="RKTQDM7W6S")
    replies = [paybill.confirm(body) for _ in range(3)]
    assert [r.get_json() for r in replies] == [ACCEPTED] * 3
    assert ledger(session) | {"audit": 0} == {"payments": 1, "tokens": 1, "messages": 1, "audit": 0}


def test_acknowledging_costs_one_insert_and_leaves_the_crediting_to_the_job(
    redis_app: Flask, session: Session, shared_dir: Path
) -> None:
    gateway: Gateway = redis_app.extensions["paygo"]
    account = account_numbered(session, gateway, "10000018", phone="+254711000001")
    paybill = MpesaPaybill(redis_app.test_client(), shared_dir)
    body = paybill.body(account.number)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's own transaction start
            statements.append(" ".join(statement.split()[:3]))

    event.listen(gateway.db.engine, "before_cursor_execute", seen)
    try:
        assert paybill.confirm(body).get_json() == ACCEPTED
        first = list(statements)
        statements.clear()
        assert paybill.confirm(body).get_json() == ACCEPTED
    finally:
        event.remove(gateway.db.engine, "before_cursor_execute", seen)
    assert first == ["INSERT INTO payments"]
    assert statements == ["INSERT INTO payments", "SELECT payments.id, payments.status"]
    assert rq_queue(gateway).count == 1
    assert payments(session)[0].status == PaymentStatus.RECEIVED


@pytest.mark.parametrize(
    "amount, minor", [("150", 15000), ("1.00", 100), ("1,000.50", 100050), (150, 15000)]
)
def test_amounts_are_parsed_exactly_into_cents(
    paybill: MpesaPaybill, session: Session, wanjiku: Account, amount: str, minor: int
) -> None:
    paybill.confirm(paybill.body("10000018", amount))
    assert payments(session)[0].amount == minor


@pytest.mark.parametrize(
    "amount", ["0", "-5", "abc", "1.234", "", [150], {"v": 1}, True, "99999999999"]
)
def test_unusable_amount_is_stored_as_rejected_with_the_reason(
    paybill: MpesaPaybill, session: Session, wanjiku: Account, amount: object
) -> None:
    reply = paybill.confirm(paybill.body("10000018", amount=amount))  # type: ignore[arg-type]
    assert reply.status_code == 200 and reply.get_json() == ACCEPTED
    [payment] = payments(session)
    assert payment.status == PaymentStatus.REJECTED and payment.status_reason
    assert count(session, Token) == 0 and count(session, OutboundMessage) == 0


def test_missing_amount_is_stored_as_rejected(
    paybill: MpesaPaybill, session: Session, wanjiku: Account
) -> None:
    body = paybill.body("10000018")
    del body["TransAmount"]
    paybill.confirm(body)
    assert payments(session)[0].status_reason == "no amount in the notice"


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"TransAmount": "150"}', "TransID is missing"),
        (b'{"TransID": {"a": 1}, "TransAmount": "150"}', "TransID must be"),
        (b'{"TransID": "' + b"X" * 81 + b'", "TransAmount": "150"}', "longer than 80"),
        (b"[" * 50_000 + b"]" * 50_000, "not valid JSON"),
    ],
)
def test_unreadable_confirmation_gets_a_daraja_error_and_stores_nothing(
    client: FlaskClient, session: Session, raw: bytes, why: str
) -> None:
    reply = client.post(
        "/payments/mpesa/mpesa-token-123/confirmation", data=raw, content_type="application/json"
    )
    assert reply.status_code == 400
    body = reply.get_json()
    assert body["ResultCode"] == 1 and why in body["ResultDesc"]
    assert count(session, Payment) == 0


def test_huge_body_gets_413_in_daraja_format(client: FlaskClient, session: Session) -> None:
    reply = client.post(
        "/payments/mpesa/mpesa-token-123/confirmation",
        data=b'{"x": "' + b"a" * 300_000 + b'"}',
        content_type="application/json",
    )
    assert reply.status_code == 413
    assert reply.get_json()["ResultCode"] == 1
    assert count(session, Payment) == 0


def test_control_characters_are_dropped_and_long_fields_cut(
    paybill: MpesaPaybill, session: Session, wanjiku: Account
) -> None:
    paybill.confirm(paybill.body("1000\x000018", FirstName="W" * 500))
    [payment] = payments(session)
    assert payment.reference == "10000018" and payment.match_rule == "account_number"
    assert payment.payer_name is not None and len(payment.payer_name) <= 120


def test_wrong_path_token_is_refused_with_only_an_audit_line(
    client: FlaskClient, session: Session, wanjiku: Account, shared_dir: Path
) -> None:
    reply = client.post(
        "/payments/mpesa/guessed-token/confirmation",
        json=sample(shared_dir, "mpesa_c2b_confirmation.json"),
    )
    assert reply.status_code == 403 and reply.get_json()["ResultCode"] == 1
    assert ledger(session) == {"payments": 0, "tokens": 0, "messages": 0, "audit": 1}
    entry = session.exec(select(AuditLog)).one()
    assert entry.action == "payment.refused" and "guessed" not in entry.detail


def test_unconfigured_provider_answers_404(
    make_app: Callable[..., Flask], shared_dir: Path
) -> None:
    client = make_app(mpesa_callback_token=None).test_client()
    reply = client.post(
        "/payments/mpesa/anything/confirmation",
        json=sample(shared_dir, "mpesa_c2b_confirmation.json"),
    )
    assert reply.status_code == 404 and reply.get_json()["ResultCode"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/payments/nosuch/x",
        "/payments/mpesa/mpesa-token-123/other",
        "/payments/mpesa/mpesa-token-123",
    ],
)
def test_unknown_callback_paths_answer_404(client: FlaskClient, path: str) -> None:
    assert client.post(path, json={}).status_code == 404


def test_get_is_refused_in_daraja_format(client: FlaskClient) -> None:
    reply = client.get("/payments/mpesa/mpesa-token-123/confirmation")
    assert reply.status_code == 405 and reply.get_json()["ResultCode"] == 1


# Validation ---------------------------------------------------------------------------


def test_validation_accepts_a_known_account(paybill: MpesaPaybill, wanjiku: Account) -> None:
    reply = paybill.validate("10000018")
    assert reply.get_json() == {"ResultCode": "0", "ResultDesc": "Accepted"}


def test_validation_accepts_a_typo_with_one_correction(
    paybill: MpesaPaybill, session: Session, gateway: Gateway
) -> None:
    account = make_account(session, gateway)
    session.commit()
    typo = account.number[:-2] + account.number[-1] + account.number[-2]
    assert typo != account.number
    assert paybill.validate(typo).get_json()["ResultCode"] == "0"


def test_validation_rejects_an_account_number_that_is_certainly_wrong(
    paybill: MpesaPaybill, session: Session, gateway: Gateway
) -> None:
    make_account(session, gateway)  # 10000004: not one typo from 99999990
    session.commit()
    reply = paybill.validate("99999990")
    assert reply.status_code == 200
    assert reply.get_json() == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}


@pytest.mark.parametrize("reference", ["SOLAR", "", "0711000001", "10000004", "1234"])
def test_validation_accepts_anything_plausible(paybill: MpesaPaybill, reference: str) -> None:
    assert paybill.validate(reference).get_json()["ResultCode"] == "0"


def test_validation_switched_off_accepts_everything(
    make_app: Callable[..., Flask], shared_dir: Path
) -> None:
    paybill = MpesaPaybill(make_app(mpesa_validation_enabled=False).test_client(), shared_dir)
    assert paybill.validate("99999990").get_json()["ResultCode"] == "0"


def test_unreadable_validation_is_refused_as_other_error(client: FlaskClient) -> None:
    reply = client.post(
        "/payments/mpesa/mpesa-token-123/validation", data=b"nope", content_type="application/json"
    )
    assert reply.status_code == 400
    assert reply.get_json()["ResultCode"] == "C2B00016"


def test_validation_stores_nothing(
    paybill: MpesaPaybill, session: Session, wanjiku: Account
) -> None:
    paybill.validate("10000018")
    assert ledger(session) == {"payments": 0, "tokens": 0, "messages": 0, "audit": 0}


# STK push results ---------------------------------------------------------------------


def _stk_request(session: Session, account: Account, checkout: str) -> None:
    assert account.id is not None
    session.add(
        StkRequest(
            checkout_request_id=checkout, account_id=account.id, phone="+254711000001", amount=15000
        )
    )
    session.commit()


def test_stk_result_credits_the_account_it_was_pushed_for(
    paybill: MpesaPaybill, session: Session, gateway: Gateway, shared_dir: Path
) -> None:
    account = make_account(session, gateway, phone="+254722999999")
    _stk_request(session, account, "ws_CO_191220191020363925")
    reply = paybill.stk_result(sample(shared_dir, "mpesa_stk_callback_ok.json"))
    assert reply.get_json() == ACCEPTED
    [payment] = payments(session)
    assert (payment.provider, payment.provider_txn_id) == ("mpesa", "NLJ7RT61SV")
    assert (payment.account_id, payment.status, payment.amount) == (account.id, "credited", 15000)


@pytest.mark.parametrize("stk_first", [True, False])
def test_stk_result_and_c2b_confirmation_of_one_payment_credit_once(
    paybill: MpesaPaybill, session: Session, wanjiku: Account, shared_dir: Path, stk_first: bool
) -> None:
    _stk_request(session, wanjiku, "ws_CO_191220191020363925")
    stk = sample(shared_dir, "mpesa_stk_callback_ok.json")
    c2b = paybill.body("10000018", receipt="NLJ7RT61SV")
    calls = [(paybill.stk_result, stk), (paybill.confirm, c2b)]
    for post, body in calls if stk_first else calls[::-1]:
        assert post(body).get_json() == ACCEPTED
    assert ledger(session) | {"audit": 0} == {"payments": 1, "tokens": 1, "messages": 1, "audit": 0}


def test_cancelled_stk_is_recorded_as_failed_and_credits_nothing(
    paybill: MpesaPaybill, session: Session, wanjiku: Account, shared_dir: Path
) -> None:
    _stk_request(session, wanjiku, "ws_CO_191220191020363926")
    reply = paybill.stk_result(sample(shared_dir, "mpesa_stk_callback_cancelled.json"))
    assert reply.get_json() == ACCEPTED
    [payment] = payments(session)
    assert payment.status == PaymentStatus.FAILED
    assert payment.status_reason == "1032 Request cancelled by user"
    assert count(session, Token) == 0 and count(session, OutboundMessage) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"Body": []},
        {"Body": {"stkCallback": {}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "x", "ResultCode": 0}}},
    ],
)
def test_malformed_stk_result_is_refused_in_daraja_format(
    paybill: MpesaPaybill, session: Session, body: dict[str, object]
) -> None:
    reply = paybill.stk_result(body)
    assert reply.status_code == 400 and reply.get_json()["ResultCode"] == 1
    assert count(session, Payment) == 0
