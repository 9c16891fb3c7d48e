"""Airtel Money: the collection callback, with its optional `hash`.

When callback authentication is on, `hash` is the Base64 HMAC-SHA256 of the `transaction`
object keyed with the app's secret. The callback carries no amount field: the amount is
read from the message ("Paid UGX 5,000 to ..."), and the account from the id we gave the
request (acc-<account>-<nonce>).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

from paygo.errors import InvalidInput
from paygo.payments.notice import NoticeStatus, PaymentNotice, ValidationQuery
from paygo.payments.providers.base import (
    CallbackForbidden,
    Provider,
    Reply,
    account_from_external_id,
    load_object,
    obj,
    text,
    txn_id,
)
from paygo.settings import Settings

_STATUSES = {
    "TS": NoticeStatus.PAID,
    "TF": NoticeStatus.FAILED,
    "TIP": NoticeStatus.IGNORED,
    "TA": NoticeStatus.IGNORED,
}
_AMOUNT = re.compile(r"\b(?P<currency>[A-Z]{3})\s?(?P<amount>\d[\d,]*(?:\.\d+)?)")


class AirtelProvider(Provider):
    slug = "airtel"
    name = "airtel"
    token_setting = "airtel_callback_token"

    def read(self, event: str, body: bytes, settings: Settings) -> PaymentNotice | ValidationQuery:
        data = load_object(body)
        transaction = obj(data, "transaction", required=True)
        if settings.airtel_callback_secret:
            verify_hash(transaction, data.get("hash"), settings.airtel_callback_secret)
        code = (text(transaction, "status_code") or "").upper()
        status = _STATUSES.get(code)
        if status is None:
            raise InvalidInput("status_code must be TS, TF, TIP or TA", field="status_code")
        ident = txn_id(transaction, "airtel_money_id") or txn_id(transaction, "id", prefix="id-")
        if ident is None:
            raise InvalidInput("airtel_money_id and id are both missing", field="id")
        message = text(transaction, "message", max_len=300)
        found = _AMOUNT.search(message or "")
        return PaymentNotice(
            provider=self.name,
            provider_txn_id=ident,
            status=status,
            amount=found.group("amount") if found else None,
            currency=found.group("currency") if found else "",
            reference=account_from_external_id(text(transaction, "id", max_len=80)),
            reason=f"{code} {message or ''}".strip() if status is not NoticeStatus.PAID else None,
        )

    def ack(self, event: str) -> Reply:
        return Reply(
            200,
            {
                "status": {
                    "code": "200",
                    "message": "SUCCESS",
                    "result_code": "ESB000010",
                    "success": True,
                }
            },
        )

    def error(self, event: str, status: int, message: str) -> Reply:
        return Reply(
            status,
            {
                "status": {
                    "code": str(status),
                    "message": message,
                    "result_code": "ESB000001",
                    "success": False,
                }
            },
        )


def sign(transaction: dict[str, Any], secret: str) -> str:
    """The `hash` Airtel sends: Base64 HMAC-SHA256 of the compact JSON transaction."""
    return _hmac(_serialise(transaction, (",", ":"), ascii_only=False), secret)


def verify_hash(transaction: dict[str, Any], received: object, secret: str) -> None:
    """Refuse a callback whose hash is missing or does not match the secret."""
    if not isinstance(received, str) or not received:
        raise CallbackForbidden("the callback has no hash")
    # The spec pins neither key order, spacing nor escaping: accept the usual serialisations.
    candidates = {
        _hmac(
            _serialise(transaction, separators, ascii_only=ascii_only, sort_keys=sort_keys), secret
        )
        for separators in ((",", ":"), (", ", ": "))
        for ascii_only in (False, True)
        for sort_keys in (False, True)
    }
    if not any(hmac.compare_digest(received.encode(), c.encode()) for c in candidates):
        raise CallbackForbidden("the callback hash does not match")


def _serialise(
    transaction: dict[str, Any],
    separators: tuple[str, str],
    *,
    ascii_only: bool,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        transaction,
        separators=separators,
        ensure_ascii=ascii_only,
        sort_keys=sort_keys,
        default=str,
    )


def _hmac(message: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
