"""Plain typed factories for test data (`make_account(session, gateway, **overrides)`)."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from sqlmodel import Session

from paygo import accounts, devices, plans
from paygo.gateway import Gateway
from paygo.models import Account, Device, PaymentPlan

_seq = itertools.count(1)


def make_plan(session: Session, **overrides: Any) -> PaymentPlan:
    values: dict[str, Any] = {
        "name": f"Plan {next(_seq)}",
        "currency": "KES",
        "price_per_day": 5000,
        "deposit": 0,
        "deposit_days": 0,
        "min_payment": 0,
        "total_price": None,
    }
    values.update(overrides)
    return plans.create_plan(session=session, **values)


def make_device(session: Session, gateway: Gateway, **overrides: Any) -> Device:
    values: dict[str, Any] = {
        "serial": f"TST{next(_seq):07d}",
        "key_hex": secrets.token_hex(16),
        "starting_code": secrets.randbelow(10**9),
        "time_divider": 1,
        "restricted": False,
        "extended": False,
    }
    values.update(overrides)
    return devices.add_device(session=session, keys=gateway.keys, **values)


def make_account(
    session: Session,
    gateway: Gateway,
    *,
    plan: PaymentPlan | None = None,
    device: Device | None = None,
    phone: str | None = None,
    language: str = "en",
    name: str = "Test Customer",
) -> Account:
    plan = plan or make_plan(session)
    device = device or make_device(session, gateway)
    phone = phone or f"+2547{next(_seq) % 100:02d}{secrets.randbelow(10**6):06d}"
    return accounts.create_account(
        session=session, name=name, phone=phone, serial=device.serial, plan=plan, language=language
    )
