"""The demo data set: one plan, a few devices with fresh keys, customers and accounts."""

from __future__ import annotations

import secrets

from sqlmodel import Session, select

from paygo import accounts, devices, plans
from paygo.crypto import KeyBox, new_device_key
from paygo.errors import Conflict
from paygo.models import PaymentPlan

DEMO_PLAN = "Solar Home 80W"
_CUSTOMERS = (
    ("Wanjiku Mwangi", "+254711000001", "en"),
    ("Otieno Odhiambo", "+254722000002", "sw"),
    ("Amina Hassan", "+254733000003", "sw"),
    ("Jean Mukendi", "+254744000004", "fr"),
)


def load(
    *, session: Session, keys: KeyBox, if_empty: bool = False, default_country: str = "KE"
) -> list[str] | None:
    """Create the demo data; None when `if_empty` and it is there already (else Conflict)."""
    if session.exec(select(PaymentPlan).where(PaymentPlan.name == DEMO_PLAN)).first():
        if if_empty:
            return None
        raise Conflict(
            f"the demo data is loaded already (plan {DEMO_PLAN!r} exists); nothing was changed",
            plan=DEMO_PLAN,
        )
    plan = plans.create_plan(
        session=session,
        name=DEMO_PLAN,
        currency="KES",
        price_per_day=5000,
        deposit=100000,
        deposit_days=7,
        min_payment=5000,
        total_price=1500000,
    )
    numbers = []
    for i, (name, phone, language) in enumerate(_CUSTOMERS, start=1):
        serial = f"DEMO{secrets.randbelow(10**6):06d}{i}"
        devices.add_device(
            session=session,
            keys=keys,
            serial=serial,
            key_hex=new_device_key(),
            starting_code=secrets.randbelow(10**9),
            hardware_model="SHS-80",
        )
        account = accounts.create_account(
            session=session,
            name=name,
            phone=phone,
            serial=serial,
            plan=plan,
            language=language,
            default_country=default_country,
        )
        numbers.append(account.number)
    for i in range(3):
        devices.add_device(
            session=session,
            keys=keys,
            serial=f"DEMO{secrets.randbelow(10**6):06d}S{i}",
            key_hex=new_device_key(),
            starting_code=secrets.randbelow(10**9),
            hardware_model="SHS-80",
        )
    return numbers
