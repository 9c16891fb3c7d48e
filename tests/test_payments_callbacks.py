"""Every payment callback endpoint against bad input: wrong secrets, an unconfigured
provider, huge or unreadable bodies, fields of any type, replays. Each gets an answer in
the provider's own format, never a 500, and nothing it sent is lost or stored twice."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from paygo.models import AuditLog, Payment
from tests.conftest import TEST_SETTINGS
from tests.payment_helpers import count, ledger, sample

Shape = Callable[[int, Any], bool]
Path_ = tuple[str | int, ...]


def daraja(status: int, body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"ResultCode", "ResultDesc"}
        and (body["ResultCode"] == 0 if status == 200 else body["ResultCode"] == 1)
    )


def daraja_validation(status: int, body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"ResultCode", "ResultDesc"}
        and (
            body["ResultCode"] in ("0", "C2B00012")
            if status == 200
            else body["ResultCode"] == "C2B00016"
        )
    )


def momo(status: int, body: Any) -> bool:
    if status == 200:
        return body is None
    return isinstance(body, dict) and set(body) == {"code", "message"}


def airtel(status: int, body: Any) -> bool:
    inner = body.get("status") if isinstance(body, dict) else None
    return (
        isinstance(inner, dict)
        and inner.get("success") is (status == 200)
        and bool(inner.get("code") == str(status))
        and {"message", "result_code"} <= set(inner)
    )


def africastalking(status: int, body: Any) -> bool:
    if status == 200:
        return bool(body == {"status": "Received"})
    return isinstance(body, dict) and body.get("status") == "Failed" and "description" in body


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # /payments/<path>, with the test token
    sample: str
    setting: str  # the Settings field of its path token
    shape: Shape  # whether a reply is in the provider's format
    ids: tuple[Path_, ...]  # where the provider's ids are (made fresh for each request)
    stores: bool = True  # False: validation, which stores nothing
    method: str = "POST"

    def url(self, token: str | None = None) -> str:
        slug, _, rest = self.path.partition("/")
        default = TEST_SETTINGS[self.setting]
        return f"/payments/{slug}/{token or default}{rest and '/' + rest}"

    def body(self, shared_dir: Path, serial: int) -> dict[str, Any]:
        """The shared sample with fresh ids, so each request is a new payment."""
        body = copy.deepcopy(sample(shared_dir, self.sample))
        body.pop("hash", None)
        for path in self.ids:
            old = get(body, path)
            put(body, path, f"{old}"[:-6] + f"{serial:06d}")
        return body


STK_ITEMS: Path_ = ("Body", "stkCallback", "CallbackMetadata", "Item")
ENDPOINTS = [
    Endpoint(
        "mpesa-confirmation",
        "mpesa/confirmation",
        "mpesa_c2b_confirmation.json",
        "mpesa_callback_token",
        daraja,
        (("TransID",),),
    ),
    Endpoint(
        "mpesa-validation",
        "mpesa/validation",
        "mpesa_c2b_validation.json",
        "mpesa_callback_token",
        daraja_validation,
        (("TransID",),),
        stores=False,
    ),
    Endpoint(
        "mpesa-stk",
        "mpesa/stk",
        "mpesa_stk_callback_ok.json",
        "mpesa_callback_token",
        daraja,
        (("Body", "stkCallback", "CheckoutRequestID"), (*STK_ITEMS, 1, "Value")),
    ),
    Endpoint(
        "mtn-momo",
        "mtn-momo",
        "mtn_momo_callback.json",
        "mtn_momo_callback_token",
        momo,
        (("financialTransactionId",), ("externalId",)),
        method="PUT",
    ),
    Endpoint(
        "airtel",
        "airtel",
        "airtel_callback.json",
        "airtel_callback_token",
        airtel,
        (("transaction", "airtel_money_id"), ("transaction", "id")),
    ),
    Endpoint(
        "africastalking",
        "africastalking",
        "at_payment_notification.json",
        "at_payments_callback_token",
        africastalking,
        (("transactionId",),),
    ),
]
PAYMENT_ENDPOINTS = [e for e in ENDPOINTS if e.stores]
#: What a careless or hostile sender puts in a field instead of what belongs there.
BAD_VALUES: list[Any] = [None, True, -1, float("nan"), "NaN", [], {"x": 1}, "9" * 3000]
_serials = itertools.count(1)


def get(data: Any, path: Path_) -> Any:
    for key in path:
        data = data[key]
    return data


def put(data: Any, path: Path_, value: Any) -> None:
    get(data, path[:-1])[path[-1]] = value


def paths(data: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every field of a JSON body, containers included."""
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def send(
    client: FlaskClient,
    endpoint: Endpoint,
    body: Any = None,
    *,
    data: bytes | None = None,
    token: str | None = None,
) -> tuple[int, Any]:
    url = endpoint.url(token)
    if data is not None:
        reply = client.open(url, method=endpoint.method, data=data, content_type="application/json")
    else:
        reply = client.open(url, method=endpoint.method, json=body)
    parsed = reply.get_json(silent=True) if reply.data else None
    return reply.status_code, parsed


def audit_actions(session: Session) -> list[str]:
    found = list(session.exec(select(AuditLog.action).order_by(col(AuditLog.id))))
    session.commit()
    return found


@pytest.fixture(params=ENDPOINTS, ids=lambda e: e.name)
def endpoint(request: pytest.FixtureRequest) -> Endpoint:
    found: Endpoint = request.param
    return found


@pytest.fixture(params=PAYMENT_ENDPOINTS, ids=lambda e: e.name)
def payment_endpoint(request: pytest.FixtureRequest) -> Endpoint:
    found: Endpoint = request.param
    return found


def test_wrong_path_token_gets_403_and_only_an_audit_line(
    client: FlaskClient, session: Session, endpoint: Endpoint, shared_dir: Path
) -> None:
    near = TEST_SETTINGS[endpoint.setting][:-1] + "4"  # wrong in its last character only
    for token in ("guessed", near):
        status, body = send(client, endpoint, endpoint.body(shared_dir, 1), token=token)
        assert status == 403 and endpoint.shape(status, body)
    assert ledger(session) == {"payments": 0, "tokens": 0, "messages": 0, "audit": 2}
    assert audit_actions(session) == ["payment.refused"] * 2


def test_unconfigured_provider_answers_404_in_its_format(
    make_app: Callable[..., Flask], session: Session, endpoint: Endpoint, shared_dir: Path
) -> None:
    client = make_app(**{endpoint.setting: None}).test_client()
    status, body = send(client, endpoint, endpoint.body(shared_dir, 1))
    assert status == 404 and endpoint.shape(status, body)
    assert ledger(session)["payments"] == 0


def test_huge_body_gets_413_in_the_providers_format(
    client: FlaskClient, session: Session, endpoint: Endpoint
) -> None:
    status, body = send(client, endpoint, data=b'{"x": "' + b"9" * 300_000 + b'"}')
    assert status == 413 and endpoint.shape(status, body)
    assert ledger(session)["payments"] == 0


UNREADABLE = [
    b"",
    b"not json",
    b"[]",
    b'"text"',
    b"\xff\xfe",
    b"{" * 100_000,
    b"[" * 100 + b"]" * 100,
]


def test_unreadable_body_gets_400_and_is_kept_for_an_operator(
    client: FlaskClient, session: Session, endpoint: Endpoint
) -> None:
    for raw in UNREADABLE:
        status, body = send(client, endpoint, data=raw)
        assert status == 400 and endpoint.shape(status, body), raw[:20]
    assert count(session, Payment) == 0
    entries = session.exec(select(AuditLog).order_by(col(AuditLog.id))).all()
    assert [e.action for e in entries] == ["payment.unreadable"] * len(UNREADABLE)
    assert '"raw": "not json"' in entries[1].detail


def test_replayed_callback_is_acknowledged_alike_and_stored_once(
    client: FlaskClient, session: Session, payment_endpoint: Endpoint, shared_dir: Path
) -> None:
    body = payment_endpoint.body(shared_dir, 7)
    replies = [send(client, payment_endpoint, body) for _ in range(3)]
    assert replies[0][0] == 200 and replies == [replies[0]] * 3
    assert count(session, Payment) == 1


def test_no_field_of_any_type_gets_a_500_or_loses_the_callback(
    client: FlaskClient, session: Session, endpoint: Endpoint, shared_dir: Path
) -> None:
    template = endpoint.body(shared_dir, 0)
    for path, value in itertools.product(list(paths(template)), BAD_VALUES):
        body = endpoint.body(shared_dir, next(_serials))
        put(body, path, value)
        before = ledger(session)
        status, reply = send(client, endpoint, body)
        after = ledger(session)
        case = f"{'.'.join(map(str, path))} = {value!r:.20}: {status} {reply}"
        assert status in (200, 400) and endpoint.shape(status, reply), case
        grown = after["payments"] - before["payments"], after["audit"] - before["audit"]
        if status == 400:  # refused, and its body kept in an audit line
            assert grown == (0, 1), case
        elif not endpoint.stores:
            assert grown == (0, 0), case
        elif not any(path[: len(i)] == i for i in endpoint.ids):
            assert sum(grown) == 1, case  # a payment, or an audited notice of no payment


def test_descriptive_fields_of_the_wrong_type_do_not_cost_the_payment(
    client: FlaskClient, session: Session, shared_dir: Path
) -> None:
    mpesa, momo = ENDPOINTS[0], next(e for e in ENDPOINTS if e.name == "mtn-momo")
    assert (
        send(
            client,
            mpesa,
            {
                **mpesa.body(shared_dir, 2),
                "FirstName": ["W"],
                "MSISDN": {"n": 1},
                "TransTime": 20261120,
            },
        )[0]
        == 200
    )
    assert send(client, momo, {**momo.body(shared_dir, 3), "payer": "256772000003"})[0] == 200
    first, second = session.exec(select(Payment).order_by(col(Payment.id))).all()
    assert (first.amount, first.payer_name, first.payer) == (15000, None, None)
    assert '"FirstName": ["W"]' in first.raw
    assert (second.amount, second.payer) == (5000, None)
    assert '"payer": "256772000003"' in second.raw


def test_database_away_gets_503_in_the_providers_format_for_a_retry(
    make_app: Callable[..., Flask], payment_endpoint: Endpoint, shared_dir: Path
) -> None:
    away = make_app(database_url="postgresql://nobody@127.0.0.1:9/none").test_client()
    body = payment_endpoint.body(shared_dir, 1)
    status, reply = send(away, payment_endpoint, body)
    assert status == 503 and payment_endpoint.shape(status, reply)
    # Refusals do not depend on writing their audit line.
    assert send(away, payment_endpoint, body, token="guessed")[0] == 403
    assert send(away, payment_endpoint, data=b"nope")[0] == 400
