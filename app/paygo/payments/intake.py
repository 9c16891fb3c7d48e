"""Writing what providers tell us, durably and once, before we acknowledge it.

A callback is stored with one `INSERT ... ON CONFLICT DO NOTHING` on (provider, provider
transaction id): twenty copies arriving together leave one row, and every copy can be
acknowledged. Amounts are parsed here (Decimal to minor units); an amount we cannot use
is stored as rejected, with the reason, so nothing a provider sent is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from paygo import audit
from paygo.db import Database
from paygo.errors import InvalidInput
from paygo.models import Account, Payment, PaymentStatus, StkRequest
from paygo.money import to_minor
from paygo.payments.notice import NoticeStatus, PaymentNotice

#: The amount column is a 32-bit integer of minor units.
MAX_AMOUNT = 2**31 - 1
#: How much of an unreadable callback's body the audit line keeps.
MAX_AUDITED_BODY = 8192


@dataclass(frozen=True)
class Stored:
    """Where a notice landed: its payment row, whether it is new, and its status now."""

    payment_id: int
    created: bool
    status: str


def store_callback(
    *, db: Database, notice: PaymentNotice, raw: str, now: datetime
) -> Stored | None:
    """Store one callback durably, in its own transaction, before it is acknowledged."""
    with db.session() as session:
        if db.dialect == "postgresql":
            # One INSERT is its own transaction: in autocommit it is on disk when it
            # returns, without the BEGIN and COMMIT round trips.
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        stored = store_notice(session=session, notice=notice, raw=raw, now=now)
        session.commit()
    return stored


def store_notice(
    *, session: Session, notice: PaymentNotice, raw: str, now: datetime
) -> Stored | None:
    """Store a payment notice once; None for notices with nothing to credit (audited)."""
    if notice.status is NoticeStatus.IGNORED:
        audit.record(
            session=session,
            actor=f"provider:{notice.provider}",
            action="payment.ignored",
            target_type="payment",
            target_id=notice.provider_txn_id,
            reason=notice.reason,
            raw=raw,
        )
        return None
    values = _row_values(session, notice, raw, now)
    inserted = session.execute(_insert(session.get_bind().dialect.name), values).scalar()
    if inserted is not None:
        return Stored(payment_id=inserted, created=True, status=values["status"])
    # A copy: read back only what the caller needs, never the stored payload.
    ident, status = session.exec(
        select(Payment.id, Payment.status)
        .where(Payment.provider == notice.provider)
        .where(Payment.provider_txn_id == notice.provider_txn_id)
    ).one()
    assert ident is not None
    return Stored(payment_id=ident, created=False, status=status)


@cache
def _insert(dialect_name: str) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING RETURNING id`, built once and compiled once."""
    table = Payment.__table__  # type: ignore[attr-defined]
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement: Insert = (
        dialect.insert(table)
        .on_conflict_do_nothing(index_elements=["provider", "provider_txn_id"])
        .returning(table.c.id)
    )
    return statement


def _row_values(session: Session, notice: PaymentNotice, raw: str, now: datetime) -> dict[str, Any]:
    amount_fallback, account_number = _stk_request(session, notice.request_id)
    amount, status, reason = _amount(notice, amount_fallback)
    return {
        "provider": notice.provider,
        "provider_txn_id": notice.provider_txn_id,
        "amount": amount,
        "currency": notice.currency[:3],
        "payer": notice.payer,
        "payer_name": notice.payer_name,
        # An STK push carries the account as its AccountReference; the result does not.
        "reference": notice.reference if notice.reference is not None else account_number,
        "raw": raw,
        "status": status,
        "status_reason": reason,
        "paid_at": notice.paid_at,
        "received_at": now,
    }


def _amount(notice: PaymentNotice, fallback: int) -> tuple[int, str, str | None]:
    """(minor units, status, reason): a failed notice keeps its reason, whatever the amount."""
    if notice.status is NoticeStatus.FAILED:
        minor = _parse(notice) if notice.amount is not None else None
        return (
            minor if isinstance(minor, int) else fallback,
            PaymentStatus.FAILED,
            (notice.reason or "failed")[:300],
        )
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


def _stk_request(session: Session, request_id: str | None) -> tuple[int, str | None]:
    """(amount asked, account number) of the STK push a result answers; (0, None) if none."""
    if request_id is None:
        return 0, None
    found = session.exec(
        select(StkRequest.amount, Account.number)
        .join(Account, col(Account.id) == col(StkRequest.account_id))
        .where(StkRequest.checkout_request_id == request_id)
    ).first()
    return (found[0], found[1]) if found is not None else (0, None)


def record_refusal(
    *, session: Session, provider: str, event: str, reason: str, remote_addr: str | None
) -> None:
    """Audit a refused callback (wrong path token, bad signature); nothing else is stored."""
    audit.record(
        session=session,
        actor=f"provider:{provider}",
        action="payment.refused",
        target_type="callback",
        target_id=event or provider,
        reason=reason,
        remote_addr=remote_addr,
    )


def record_unreadable(
    *, session: Session, provider: str, event: str, reason: str, raw: str
) -> None:
    """Audit an authenticated callback we could not read, with (the start of) its body."""
    audit.record(
        session=session,
        actor=f"provider:{provider}",
        action="payment.unreadable",
        target_type="callback",
        target_id=event or provider,
        reason=reason,
        raw=raw[:MAX_AUDITED_BODY],
    )
