"""Test data for the conversation tests: a fixed clock, customers, accounts and codes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlmodel import Session, select

from paygo.gateway import Gateway
from paygo.models import Account, AccountStatus, BackplaneEntry, Device, PaymentPlan, Token
from tests.factories import make_account, make_plan

NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # 10:00 in Nairobi
KNOWN, OTHER, STRANGER = "+254711000001", "+254722000002", "+254799000009"


def ussd_app(make_app: Callable[..., Flask], lang: str = "en", **overrides: Any) -> Flask:
    app = make_app(default_language=lang, **overrides)
    set_clock(app, NOW)
    return app


def set_clock(app: Flask, moment: datetime) -> None:
    app.extensions["paygo"].conversations.clock = lambda: moment


def wrong_numbers_stored(session: Session, phone: str) -> list[datetime]:
    """When each wrong account number from `phone` was typed, as the database backplane
    stores them (no Redis)."""
    session.expire_all()
    scores = session.exec(
        select(BackplaneEntry.score).where(BackplaneEntry.key == f"lookup-fail:{phone}")
    )
    return sorted(datetime.fromtimestamp(score or 0, UTC) for score in scores)


def gw(app: Flask) -> Gateway:
    gateway: Gateway = app.extensions["paygo"]
    return gateway


def plan(session: Session, **overrides: Any) -> PaymentPlan:
    values: dict[str, Any] = {
        "name": "Solar Home 80W",
        "price_per_day": 5000,
        "min_payment": 5000,
        "total_price": 1500000,
    }
    return make_plan(session, **{**values, **overrides})


def account(
    session: Session,
    gateway: Gateway,
    *,
    phone: str = KNOWN,
    lang: str = "en",
    on: PaymentPlan | None = None,
    days: float = 12.5,
    paid: int = 150000,
    status: str = AccountStatus.ACTIVE,
) -> Account:
    made = make_account(session, gateway, plan=on or plan(session), phone=phone, language=lang)
    made.status = status
    made.total_paid = paid
    made.credit_until = NOW + timedelta(days=days) if days else None
    session.add(made)
    session.commit()
    return made


def tokens(session: Session, made: Account, count: int) -> list[Token]:
    rows = [
        Token(
            device_id=made.device_id,
            account_id=made.id,
            count=n,
            type="add_time",
            days=n,
            value_raw=n,
            code=f"{(n * 123456789) % 10**9:09d}",
            created_at=NOW - timedelta(days=count - n),
        )
        for n in range(1, count + 1)
    ]
    session.add_all(rows)
    device = session.get(Device, made.device_id)
    assert device is not None
    device.token_count = count
    session.add(device)
    session.commit()
    return rows


# Arrangements for the transcript cases: (session, gateway, lang) -> None --------------------


def one_account(s: Session, g: Gateway, lang: str) -> None:
    account(s, g, lang=lang)


def paid_off(s: Session, g: Gateway, lang: str) -> None:
    account(s, g, lang=lang, paid=1500000, days=0, status=AccountStatus.PAID_OFF)


def two_accounts(s: Session, g: Gateway, lang: str) -> None:
    account(s, g, lang=lang)
    account(s, g, lang=lang, on=plan(s, name="Solar TV 32in", price_per_day=10000), days=3)


def with_tokens(s: Session, g: Gateway, lang: str) -> None:
    tokens(s, account(s, g, lang=lang), 12)


def with_deposit_due(s: Session, g: Gateway, lang: str) -> None:
    account(
        s,
        g,
        lang=lang,
        on=plan(s, deposit=100000, deposit_days=7),
        paid=0,
        days=0,
        status=AccountStatus.PENDING_DEPOSIT,
    )


def with_minimum(s: Session, g: Gateway, lang: str) -> None:
    account(s, g, lang=lang, on=plan(s, min_payment=10000))


def nearly_paid(s: Session, g: Gateway, lang: str) -> None:
    account(s, g, lang=lang, paid=1480000)


def someone_elses(s: Session, g: Gateway, lang: str) -> None:
    account(s, g, phone=OTHER, lang="en")
