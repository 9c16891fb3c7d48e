"""Africa's Talking Payments (legacy): C2B and checkout notifications.

Failed deliveries (HTTP >= 400) are retried every minute for six hours, so only a body we
can never read gets an error; everything readable is acknowledged.
"""

from __future__ import annotations

from paygo.errors import InvalidInput
from paygo.payments.notice import NoticeStatus, PaymentNotice, ValidationQuery
from paygo.payments.providers.base import (
    Provider,
    Reply,
    load_object,
    parse_iso,
    text,
    txn_id,
)
from paygo.settings import Settings

#: Money coming in; other categories (B2C, B2B, wallet transfers) are money going out.
INCOMING = frozenset({"MobileC2B", "MobileCheckout", "BankCheckout", "CardCheckout"})


class AfricasTalkingProvider(Provider):
    slug = "africastalking"
    name = "africastalking"
    token_setting = "at_payments_callback_token"

    def read(self, event: str, body: bytes, settings: Settings) -> PaymentNotice | ValidationQuery:
        data = load_object(body)
        ident = txn_id(data, "transactionId")
        if ident is None:
            raise InvalidInput("transactionId is missing", field="transactionId")
        category, status = text(data, "category") or "", text(data, "status") or ""
        currency, _, amount = (text(data, "value") or "").partition(" ")
        if category not in INCOMING:
            kind, reason = NoticeStatus.IGNORED, f"category {category or '-'} is not money in"
        elif status == "Success":
            kind, reason = NoticeStatus.PAID, None
        elif status == "Failed":
            kind, reason = NoticeStatus.FAILED, text(data, "description", max_len=200) or status
        else:
            kind, reason = NoticeStatus.IGNORED, f"status {status or '-'} is not final"
        return PaymentNotice(
            provider=self.name,
            provider_txn_id=ident,
            status=kind,
            amount=amount.strip() or None,
            currency=currency[:3].upper(),
            reference=text(data, "clientAccount"),
            payer=text(data, "source", max_len=100),
            paid_at=parse_iso(text(data, "transactionDate")),
            reason=reason,
        )

    def ack(self, event: str) -> Reply:
        return Reply(200, {"status": "Received"})

    def error(self, event: str, status: int, message: str) -> Reply:
        return Reply(status, {"status": "Failed", "description": message})
