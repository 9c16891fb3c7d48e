"""The rows a change to an account holds: the account, then its box, locked once.

Every ledger change locks in the same order (payment, account, device), so two of them
on one account wait for each other instead of deadlocking. The held rows are passed on
explicitly: nothing below locks them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from paygo.db import lock_row
from paygo.errors import PaymentError
from paygo.models import Account, Device
from paygo.tokens.issue import lock_device


@dataclass(frozen=True)
class Held:
    """An account and its box, both locked until the transaction that holds them ends."""

    account: Account
    device: Device


def hold_account(*, session: Session, account_id: int) -> Held:
    """Lock an account, then its box, for the rest of the transaction."""
    account = lock_row(session, Account, account_id)
    if account is None:
        raise PaymentError(f"no account #{account_id}", account_id=account_id)
    return Held(account, lock_device(session=session, device_id=account.device_id))
