"""MTN MoMo, Airtel Money and Africa's Talking payment callbacks, with the shared samples."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from paygo.gateway import Gateway
from paygo.models import Account, AuditLog, Payment, PaymentStatus
from paygo.payments.providers.airtel import sign
from tests.factories import make_plan
from tests.payment_helpers import account_numbered, count, ledger, payments, sample

MOMO = "/payments/mtn-momo/momo-token-123"
AIRTEL = "/payments/airtel/airtel-token-123"
AT = "/payments/africastalking/at-token-123"
AIRTEL_OK = {
    "status": {"code": "200", "message": "SUCCESS", "result_code": "ESB000010", "success": True}
}


@pytest.fixture
def ugx_account(session: Session, gateway: Gateway) -> Account:
    """Account 10000018 on a Ugandan plan (UGX has no minor unit)."""
    plan = make_plan(session, currency="UGX", price_per_day=1000)
    return account_numbered(session, gateway, "10000018", phone="+256772000003", plan=plan)


@pytest.fixture
def kes_account(session: Session, gateway: Gateway) -> Account:
    return account_numbered(session, gateway, "10000018", phone="+254711000001")


# MTN MoMo -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_momo_successful_result_credits_the_account_in_its_external_id(
    client: FlaskClient, session: Session, ugx_account: Account, shared_dir: Path, method: str
) -> None:
    reply = client.open(MOMO, method=method, json=sample(shared_dir, "mtn_momo_callback.json"))
    assert reply.status_code == 200 and reply.data == b""
    [payment] = payments(session)
    assert (payment.provider, payment.provider_txn_id) == ("mtn_momo", "1478923561")
    assert (payment.amount, payment.currency, payment.status) == (5000, "UGX", "credited")
    assert payment.account_id == ugx_account.id and payment.payer == "256772000003"


def test_momo_failed_result_is_recorded_with_its_reason(
    client: FlaskClient, session: Session, ugx_account: Account, shared_dir: Path
) -> None:
    body = {
        **sample(shared_dir, "mtn_momo_callback.json"),
        "status": "FAILED",
        "reason": "NOT_ENOUGH_FUNDS",
    }
    del body["financialTransactionId"]
    assert client.put(MOMO, json=body).status_code == 200
    [payment] = payments(session)
    assert payment.status == PaymentStatus.FAILED
    assert payment.status_reason == "NOT_ENOUGH_FUNDS"
    assert payment.provider_txn_id == "ext-acc-10000018-7f3a"
    assert ledger(session)["tokens"] == 0


def test_momo_pending_result_stores_no_payment_but_an_audit_line(
    client: FlaskClient, session: Session, ugx_account: Account, shared_dir: Path
) -> None:
    body = {**sample(shared_dir, "mtn_momo_callback.json"), "status": "PENDING"}
    assert client.put(MOMO, json=body).status_code == 200
    assert count(session, Payment) == 0
    assert session.exec(select(AuditLog)).one().action == "payment.ignored"


@pytest.mark.parametrize(
    "change, why",
    [
        ({"status": "WEIRD"}, "status must be"),
        ({"status": None}, "status must be"),
        ({"financialTransactionId": None, "externalId": None}, "both missing"),
        ({"financialTransactionId": {"id": 1}}, "financialTransactionId must be"),
    ],
)
def test_momo_bad_result_is_refused_in_momo_format(
    client: FlaskClient, session: Session, shared_dir: Path, change: dict[str, Any], why: str
) -> None:
    body = {**sample(shared_dir, "mtn_momo_callback.json"), **change}
    reply = client.put(MOMO, json=body)
    assert reply.status_code == 400
    assert reply.get_json()["code"] == "INVALID_CALLBACK" and why in reply.get_json()["message"]
    assert count(session, Payment) == 0


def test_momo_wrong_token_and_huge_body_get_momo_errors(
    client: FlaskClient, session: Session
) -> None:
    assert client.put("/payments/mtn-momo/wrong", json={}).get_json()["code"] == "NOT_ALLOWED"
    reply = client.put(MOMO, data=b"x" * 300_000, content_type="application/json")
    assert reply.status_code == 413 and reply.get_json()["code"] == "PAYLOAD_TOO_LARGE"
    assert ledger(session) == {"payments": 0, "tokens": 0, "messages": 0, "audit": 1}


def test_momo_amount_in_another_currency_waits_in_suspense(
    client: FlaskClient, session: Session, kes_account: Account, shared_dir: Path
) -> None:
    client.put(MOMO, json=sample(shared_dir, "mtn_momo_callback.json"))
    [payment] = payments(session)
    assert payment.status == PaymentStatus.UNMATCHED
    assert "UGX" in (payment.status_reason or "") and payment.account_id is None


# Airtel Money -------------------------------------------------------------------------


def _airtel(shared_dir: Path, **transaction: Any) -> dict[str, Any]:
    body = copy.deepcopy(sample(shared_dir, "airtel_callback.json"))
    body["transaction"].update(transaction)
    body.pop("hash")
    return body


def test_airtel_success_credits_the_account_in_its_id(
    client: FlaskClient, session: Session, ugx_account: Account, shared_dir: Path
) -> None:
    reply = client.post(AIRTEL, json=_airtel(shared_dir))
    assert reply.status_code == 200 and reply.get_json() == AIRTEL_OK
    [payment] = payments(session)
    assert (payment.provider_txn_id, payment.amount, payment.currency) == (
        "MP261120.1015.A00001",
        5000,
        "UGX",
    )
    assert (payment.status, payment.account_id) == ("credited", ugx_account.id)


def test_airtel_failure_is_recorded_with_its_reason(
    client: FlaskClient, session: Session, ugx_account: Account, shared_dir: Path
) -> None:
    client.post(
        AIRTEL,
        json=_airtel(
            shared_dir, status_code="TF", message="Transaction failed: insufficient funds"
        ),
    )
    [payment] = payments(session)
    assert payment.status == PaymentStatus.FAILED
    assert payment.status_reason == "TF Transaction failed: insufficient funds"


@pytest.fixture
def signed_client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(airtel_callback_secret="airtel-secret").test_client()


def test_airtel_with_a_valid_hash_is_accepted(
    signed_client: FlaskClient, session: Session, ugx_account: Account, shared_dir: Path
) -> None:
    body = _airtel(shared_dir)
    body["hash"] = sign(body["transaction"], "airtel-secret")
    # Posted byte for byte in Airtel's key order (the test client's json= sorts keys).
    reply = signed_client.post(AIRTEL, data=json.dumps(body), content_type="application/json")
    assert reply.get_json() == AIRTEL_OK
    assert payments(session)[0].status == "credited"


@pytest.mark.parametrize("bad_hash", [None, "", "bm90IHRoZSBoYXNo", 12])
def test_airtel_with_a_missing_or_wrong_hash_is_refused_with_an_audit_line(
    signed_client: FlaskClient,
    session: Session,
    ugx_account: Account,
    shared_dir: Path,
    bad_hash: object,
) -> None:
    body = {**_airtel(shared_dir), "hash": bad_hash}
    reply = signed_client.post(AIRTEL, json=body)
    assert reply.status_code == 403
    assert reply.get_json()["status"]["success"] is False
    assert ledger(session) == {"payments": 0, "tokens": 0, "messages": 0, "audit": 1}


def test_airtel_hash_over_a_tampered_amount_is_refused(
    signed_client: FlaskClient, session: Session, ugx_account: Account, shared_dir: Path
) -> None:
    body = _airtel(shared_dir)
    body["hash"] = sign(body["transaction"], "airtel-secret")
    body["transaction"]["message"] = "Paid UGX 500,000 to SunPower"
    assert signed_client.post(AIRTEL, json=body).status_code == 403
    assert count(session, Payment) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"transaction": "x"},
        {"transaction": {"id": "a"}},
        {"transaction": {"status_code": "TS"}},
    ],
)
def test_airtel_bad_callback_is_refused_in_airtel_format(
    client: FlaskClient, session: Session, body: dict[str, Any]
) -> None:
    reply = client.post(AIRTEL, json=body)
    assert reply.status_code == 400 and reply.get_json()["status"]["success"] is False
    assert count(session, Payment) == 0


def test_airtel_without_an_amount_in_its_message_is_stored_as_rejected(
    client: FlaskClient, session: Session, ugx_account: Account, shared_dir: Path
) -> None:
    client.post(AIRTEL, json=_airtel(shared_dir, message="Payment received"))
    [payment] = payments(session)
    assert payment.status == PaymentStatus.REJECTED


# Africa's Talking ---------------------------------------------------------------------


def test_africastalking_c2b_notification_credits_the_client_account(
    client: FlaskClient, session: Session, kes_account: Account, shared_dir: Path
) -> None:
    reply = client.post(AT, json=sample(shared_dir, "at_payment_notification.json"))
    assert reply.status_code == 200 and reply.get_json() == {"status": "Received"}
    [payment] = payments(session)
    assert (payment.provider, payment.provider_txn_id) == ("africastalking", "ATPid_1b2c3d4e5f")
    assert (payment.amount, payment.status, payment.account_id) == (
        15000,
        "credited",
        kes_account.id,
    )
    assert payment.paid_at is not None and payment.paid_at.hour == 10


def test_africastalking_failed_notification_credits_nothing(
    client: FlaskClient, session: Session, kes_account: Account, shared_dir: Path
) -> None:
    body = {
        **sample(shared_dir, "at_payment_notification.json"),
        "status": "Failed",
        "description": "Insufficient funds",
    }
    client.post(AT, json=body)
    [payment] = payments(session)
    assert (payment.status, payment.status_reason) == ("failed", "Insufficient funds")


def test_africastalking_money_going_out_is_not_credited(
    client: FlaskClient, session: Session, kes_account: Account, shared_dir: Path
) -> None:
    body = {**sample(shared_dir, "at_payment_notification.json"), "category": "MobileB2C"}
    assert client.post(AT, json=body).status_code == 200
    assert count(session, Payment) == 0 and count(session, AuditLog) == 1


def test_africastalking_bad_notification_is_refused_in_its_format(
    client: FlaskClient, session: Session
) -> None:
    reply = client.post(AT, json={"value": "KES 150.00"})
    assert reply.status_code == 400
    assert reply.get_json() == {"status": "Failed", "description": "transactionId is missing"}
    reply = client.post("/payments/africastalking/nope", json={})
    assert reply.status_code == 403 and reply.get_json()["status"] == "Failed"
