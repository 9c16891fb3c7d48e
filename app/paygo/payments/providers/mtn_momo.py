"""MTN MoMo Collections: the request-to-pay result callback (PUT or POST, sent once).

`financialTransactionId` is MTN's id; `externalId` is the id we gave the request, which
carries the account number (acc-<account>-<nonce>).
"""

from __future__ import annotations

from typing import Any

from paygo.errors import InvalidInput
from paygo.payments.notice import NoticeStatus, PaymentNotice, ValidationQuery
from paygo.payments.providers.base import (
    Provider,
    Reply,
    account_from_external_id,
    amount_text,
    load_object,
    obj,
    text,
    txn_id,
)
from paygo.settings import Settings

_STATUSES = {
    "SUCCESSFUL": NoticeStatus.PAID,
    "FAILED": NoticeStatus.FAILED,
    "PENDING": NoticeStatus.IGNORED,
}
_ERROR_CODES = {
    403: "NOT_ALLOWED",
    404: "RESOURCE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
}


class MtnMomoProvider(Provider):
    slug = "mtn-momo"
    name = "mtn_momo"
    token_setting = "mtn_momo_callback_token"
    methods = frozenset({"PUT", "POST"})

    def read(self, event: str, body: bytes, settings: Settings) -> PaymentNotice | ValidationQuery:
        data = load_object(body)
        status = _STATUSES.get((text(data, "status") or "").upper())
        if status is None:
            raise InvalidInput("status must be SUCCESSFUL, FAILED or PENDING", field="status")
        external = text(data, "externalId", max_len=80)
        ident = txn_id(data, "financialTransactionId") or txn_id(data, "externalId", prefix="ext-")
        if ident is None:
            raise InvalidInput(
                "financialTransactionId and externalId are both missing",
                field="financialTransactionId",
            )
        return PaymentNotice(
            provider=self.name,
            provider_txn_id=ident,
            status=status,
            amount=amount_text(data, "amount"),
            currency=text(data, "currency", max_len=3) or "",
            reference=account_from_external_id(external)
            or text(data, "payeeNote")
            or text(data, "payerMessage"),
            payer=text(obj(data, "payer"), "partyId", max_len=100),
            reason=_reason(data) if status is not NoticeStatus.PAID else None,
        )

    def ack(self, event: str) -> Reply:
        return Reply(200, None)

    def error(self, event: str, status: int, message: str) -> Reply:
        return Reply(
            status, {"code": _ERROR_CODES.get(status, "INVALID_CALLBACK"), "message": message}
        )


def _reason(data: dict[str, Any]) -> str:
    reason = data.get("reason")
    if isinstance(reason, dict):  # older callbacks: {"code": ..., "message": ...}
        return text(reason, "code", max_len=200) or text(reason, "message") or "FAILED"
    return text(data, "reason", max_len=200) or str(data.get("status"))
