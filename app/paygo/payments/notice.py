"""Our own shape of a provider's payment message, whatever format it arrived in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class NoticeStatus(StrEnum):
    PAID = "paid"  # the money moved: store it and reconcile it
    FAILED = "failed"  # the provider says it did not go through: record why, credit nothing
    IGNORED = "ignored"  # not final, or not money in: audit it, credit nothing


@dataclass(frozen=True)
class PaymentNotice:
    """One payment as a provider reported it, before we know whose it is."""

    provider: str  # Payment.provider: "mpesa", "mtn_momo", ...
    provider_txn_id: str  # the provider's id: the idempotency key
    status: NoticeStatus
    amount: str | None  # major units exactly as sent ("150", "1.00"); parsed later
    currency: str
    reference: str | None = None  # what the customer typed (or the reference we pushed)
    payer: str | None = None  # plain, masked or SHA-256 hashed, as sent
    payer_name: str | None = None
    paid_at: datetime | None = None
    reason: str | None = None  # why it failed, in the provider's words
    request_id: str | None = None  # a collection request we initiated (STK CheckoutRequestID)


@dataclass(frozen=True)
class ValidationQuery:
    """A provider asking whether to accept a payment before it happens (M-Pesa validation)."""

    reference: str | None
    amount: str | None
    payer: str | None
