"""Test helpers that speak the payment providers' language.

`MpesaPaybill` pays into the PayBill like a customer: Daraja sends the validation (when
asked), then the confirmation, exactly as the shared samples show.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlmodel import Session, col, func, select
from werkzeug.test import TestResponse

from paygo.gateway import Gateway
from paygo.models import Account, AuditLog, OutboundMessage, Payment, Token
from tests.factories import make_account

MPESA_TOKEN = "mpesa-token-123"


def sample(shared_dir: Path, name: str) -> dict[str, Any]:
    """The body of a shared provider sample."""
    body: dict[str, Any] = json.loads((shared_dir / "providers" / name).read_text())["body"]
    return body


def receipt_number() -> str:
    """A fresh M-Pesa-like receipt number (10 upper-case letters and digits)."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(10))


def digest(msisdn: str) -> str:
    """The SHA-256 hex Daraja now sends in place of the MSISDN."""
    return hashlib.sha256(msisdn.lstrip("+").encode()).hexdigest()


class MpesaPaybill:
    """A customer paying into the distributor's PayBill, seen through Daraja's callbacks."""

    def __init__(self, client: FlaskClient, shared_dir: Path, *, token: str = MPESA_TOKEN) -> None:
        self.client = client
        self.token = token
        self.template = sample(shared_dir, "mpesa_c2b_confirmation.json")

    def url(self, event: str) -> str:
        return f"/payments/mpesa/{self.token}/{event}"

    def body(
        self,
        reference: str,
        amount: str = "150",
        *,
        phone: str = "254711000001",
        receipt: str | None = None,
        hashed: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """A confirmation body as Daraja would send it."""
        return {
            **self.template,
            "TransID": receipt or receipt_number(),
            "BillRefNumber": reference,
            "TransAmount": amount,
            "MSISDN": digest(phone) if hashed else phone,
            **fields,
        }

    def pay(self, reference: str, amount: str = "150", **options: Any) -> TestResponse:
        """Pay `amount` KES with `reference` typed as the account number."""
        return self.confirm(self.body(reference, amount, **options))

    def confirm(self, body: dict[str, Any]) -> TestResponse:
        return self.client.post(self.url("confirmation"), json=body)

    def validate(
        self, reference: str, amount: str = "150", phone: str = "254711000001"
    ) -> TestResponse:
        """Daraja asking whether to accept the payment before it happens."""
        return self.client.post(
            self.url("validation"), json=self.body(reference, amount, phone=phone)
        )

    def stk_result(self, body: dict[str, Any]) -> TestResponse:
        return self.client.post(self.url("stk"), json=body)


def account_numbered(
    session: Session, gateway: Gateway, number: str, *, phone: str | None = None, **options: Any
) -> Account:
    """An account whose number is `number` (the samples use fixed numbers)."""
    account = make_account(session, gateway, phone=phone, **options)
    account.number = number
    session.add(account)
    session.commit()
    return account


def count(session: Session, model: type[Any], *where: Any) -> int:
    """How many rows of `model` match, read fresh from the database."""
    query = select(func.count()).select_from(model)
    for clause in where:
        query = query.where(clause)
    found = int(session.exec(query).one())
    release(session)
    return found


def payments(session: Session) -> list[Payment]:
    """Every payment, oldest first, read fresh."""
    found = list(
        session.exec(
            select(Payment).order_by(col(Payment.id)).execution_options(populate_existing=True)
        )
    )
    release(session)
    return found


def fresh(session: Session, model: type[Any], ident: int | None) -> Any:
    """One row read fresh from the database."""
    found = session.get(model, ident, populate_existing=True)
    release(session)
    return found


def release(session: Session) -> None:
    """End the test session's transaction: on SQLite it holds the write lock until then."""
    session.commit()


def ledger(session: Session) -> dict[str, int]:
    """Payments, tokens, outbox messages and audit lines: what a test expects unchanged."""
    return {
        "payments": count(session, Payment),
        "tokens": count(session, Token),
        "messages": count(session, OutboundMessage),
        "audit": count(session, AuditLog),
    }
