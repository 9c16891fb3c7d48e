"""Safaricom M-Pesa Daraja: C2B validation and confirmation, and M-Pesa Express (STK) results.

C2B callbacks carry no signature: the unguessable path token is the protection. `TransID`
(the receipt number) is the idempotency key; an STK result is stored under its
`MpesaReceiptNumber`, so the C2B confirmation of the same payment lands on the same key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from paygo.errors import InvalidInput
from paygo.payments.notice import NoticeStatus, PaymentNotice, ValidationQuery
from paygo.payments.providers.base import (
    Provider,
    Reply,
    amount_text,
    load_object,
    obj,
    required_text,
    text,
    txn_id,
)
from paygo.settings import Settings

#: Daraja's timestamps are Kenyan local time without a zone.
MPESA_TIMEZONE = ZoneInfo("Africa/Nairobi")
CURRENCY = "KES"
ACCEPTED: dict[str, Any] = {"ResultCode": 0, "ResultDesc": "Accepted"}


class MpesaProvider(Provider):
    slug = "mpesa"
    name = "mpesa"
    token_setting = "mpesa_callback_token"
    events = frozenset({"validation", "confirmation", "stk"})

    def read(self, event: str, body: bytes, settings: Settings) -> PaymentNotice | ValidationQuery:
        data = load_object(body)
        if event == "validation":
            return ValidationQuery(
                reference=text(data, "BillRefNumber"),
                amount=amount_text(data, "TransAmount"),
                payer=text(data, "MSISDN", max_len=100),
            )
        if event == "stk":
            return _stk_notice(data)
        return _c2b_notice(data)

    def validates(self, settings: Settings) -> bool:
        return settings.mpesa_validation_enabled

    def ack(self, event: str) -> Reply:
        return Reply(200, ACCEPTED)

    def validation_reply(self, accepted: bool) -> Reply:
        if accepted:
            return Reply(200, {"ResultCode": "0", "ResultDesc": "Accepted"})
        return Reply(200, {"ResultCode": "C2B00012", "ResultDesc": "Rejected"})

    def error(self, event: str, status: int, message: str) -> Reply:
        if event == "validation":
            # C2B00016 is Daraja's "other error": the payment is refused, not queued.
            return Reply(status, {"ResultCode": "C2B00016", "ResultDesc": f"Rejected: {message}"})
        return Reply(status, {"ResultCode": 1, "ResultDesc": message})


def _c2b_notice(data: dict[str, Any]) -> PaymentNotice:
    receipt = txn_id(data, "TransID")
    if receipt is None:
        raise InvalidInput("TransID is missing", field="TransID")
    names = (text(data, key, max_len=40) for key in ("FirstName", "MiddleName", "LastName"))
    return PaymentNotice(
        provider=MpesaProvider.name,
        provider_txn_id=receipt,
        status=NoticeStatus.PAID,
        amount=amount_text(data, "TransAmount"),
        currency=CURRENCY,
        reference=text(data, "BillRefNumber"),
        payer=text(data, "MSISDN", max_len=100),
        payer_name=" ".join(n for n in names if n) or None,
        paid_at=parse_local_time(text(data, "TransTime")),
    )


def _stk_notice(data: dict[str, Any]) -> PaymentNotice:
    result = obj(obj(data, "Body", required=True), "stkCallback", required=True)
    checkout = required_text(result, "CheckoutRequestID", max_len=80)
    if checkout is None:
        raise InvalidInput("CheckoutRequestID is missing", field="CheckoutRequestID")
    code = required_text(result, "ResultCode")
    if code is None:
        raise InvalidInput("ResultCode is missing", field="ResultCode")
    if code != "0":
        return PaymentNotice(
            provider=MpesaProvider.name,
            status=NoticeStatus.FAILED,
            provider_txn_id=txn_id(result, "CheckoutRequestID", prefix="stk-") or checkout,
            amount=None,
            currency=CURRENCY,
            request_id=checkout,
            reason=f"{code} {text(result, 'ResultDesc', max_len=200) or ''}",
        )
    items = _metadata(result)
    receipt = txn_id(items, "MpesaReceiptNumber")
    if receipt is None:
        raise InvalidInput("MpesaReceiptNumber is missing", field="MpesaReceiptNumber")
    return PaymentNotice(
        provider=MpesaProvider.name,
        provider_txn_id=receipt,
        status=NoticeStatus.PAID,
        amount=amount_text(items, "Amount"),
        currency=CURRENCY,
        payer=text(items, "PhoneNumber", max_len=100),
        paid_at=parse_local_time(text(items, "TransactionDate")),
        request_id=checkout,
    )


def _metadata(result: dict[str, Any]) -> dict[str, Any]:
    items = obj(result, "CallbackMetadata", required=True).get("Item")
    if not isinstance(items, list):
        raise InvalidInput("CallbackMetadata.Item must be a list", field="Item")
    return {
        item["Name"]: item.get("Value")
        for item in items
        if isinstance(item, dict) and isinstance(item.get("Name"), str)
    }


def parse_local_time(value: str | None) -> datetime | None:
    """Daraja's `YYYYMMDDHHMMSS` (Nairobi time) as aware UTC; None when unreadable."""
    try:
        local = datetime.strptime(value or "", "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return local.replace(tzinfo=MPESA_TIMEZONE).astimezone(UTC)
