"""Writing what providers tell us, durably and once, before we acknowledge it.

A callback is stored with one `INSERT ... ON CONFLICT DO NOTHING` on (provider, provider
transaction id): twenty copies arriving together leave one row, and every copy can be
acknowledged. Amounts are parsed here (Decimal to minor units); an amount we cannot use
is stored as rejected, with the reason, so nothing a provider sent is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from app import audit
from app.errors import InvalidInput
from app.models import Account, Payment, PaymentStatus, StkRequest
from app.money import to_minor
from app.payments.notice import NoticeStatus, PaymentNotice

#: The amount column is a 32-bit integer of minor units.
MAX_AMOUNT = 2**31 - 1


@dataclass(frozen=True)
class Stored:
    """Where a notice landed: its payment row, whether it is new, and its status now."""

    payment_id: int
    created: bool
    status: str


def store_notice(*, session: Session, notice: PaymentNotice, raw: str,
                 now: datetime) -> Stored | None:
    """Store a payment notice once; None for notices with nothing to credit (audited)."""
    if notice.status is NoticeStatus.IGNORED:
        audit.record(session=session, actor=f"provider:{notice.provider}",
                     action="payment.ignored", target_type="payment",
                     target_id=notice.provider_txn_id, reason=notice.reason, raw=raw)
        return None
    values = _row_values(session, notice, raw, now)
    table = Payment.__table__  # type: ignore[attr-defined]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(table).values(**values)
        .on_conflict_do_nothing(index_elements=["provider", "provider_txn_id"])
        .returning(table.c.id)).scalar()
    if inserted is not None:
        return Stored(payment_id=inserted, created=True, status=values["status"])
    existing = session.exec(select(Payment).where(Payment.provider == notice.provider)
                            .where(Payment.provider_txn_id == notice.provider_txn_id)).one()
    assert existing.id is not None
    return Stored(payment_id=existing.id, created=False, status=existing.status)


def _row_values(session: Session, notice: PaymentNotice, raw: str,
                now: datetime) -> dict[str, Any]:
    request = _stk_request(session, notice.request_id)
    amount, status, reason = _amount(notice, request)
    reference = notice.reference
    if reference is None and request is not None:
        # An STK push carries the account as its AccountReference; the result does not.
        reference = session.exec(select(Account.number)
                                 .where(Account.id == request.account_id)).first()
    return {"provider": notice.provider, "provider_txn_id": notice.provider_txn_id,
            "amount": amount, "currency": notice.currency[:3], "payer": notice.payer,
            "payer_name": notice.payer_name, "reference": reference, "raw": raw,
            "status": status, "status_reason": reason, "paid_at": notice.paid_at,
            "received_at": now}


def _amount(notice: PaymentNotice, request: StkRequest | None) -> tuple[int, str, str | None]:
    """(minor units, status, reason): a failed notice keeps its reason, whatever the amount."""
    if notice.status is NoticeStatus.FAILED:
        minor = _parse(notice) if notice.amount is not None else None
        fallback = request.amount if request is not None else 0
        return (minor if isinstance(minor, int) else fallback, PaymentStatus.FAILED,
                (notice.reason or "failed")[:300])
    parsed = _parse(notice)
    if isinstance(parsed, str):
        return 0, PaymentStatus.REJECTED, parsed[:300]
    return parsed, PaymentStatus.RECEIVED, None


def _parse(notice: PaymentNotice) -> int | str:
    """The amount in minor units, or why it cannot be used."""
    if notice.amount is None:
        return "no amount in the notice"
    try:
        minor = to_minor(notice.amount, notice.currency or "?")
    except InvalidInput as exc:
        return f"unusable amount {notice.amount!r} {notice.currency}: {exc.message}"
    except ArithmeticError:  # an exponent beyond what Decimal's context allows
        return f"unusable amount {notice.amount!r}"
    if minor <= 0:
        return f"amount {notice.amount!r} is not positive"
    if minor > MAX_AMOUNT:
        return f"amount {notice.amount!r} is larger than any payment we accept"
    return minor


def _stk_request(session: Session, request_id: str | None) -> StkRequest | None:
    if request_id is None:
        return None
    return session.exec(select(StkRequest)
                        .where(StkRequest.checkout_request_id == request_id)).first()


def record_refusal(*, session: Session, provider: str, event: str, reason: str,
                   remote_addr: str | None) -> None:
    """Audit a refused callback (wrong path token, bad signature); nothing else is stored."""
    audit.record(session=session, actor=f"provider:{provider}", action="payment.refused",
                 target_type="callback", target_id=event or provider, reason=reason,
                 remote_addr=remote_addr)
