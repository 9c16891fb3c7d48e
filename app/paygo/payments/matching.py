"""Which account a payment belongs to: six rules, in order, and nothing guessed beyond them.

1. `account_number`: the reference is an account number, exactly.
2. `normalised_reference`: the same once spaces, dashes, dots, case and prefixes such as
   `#`, `acc`, `a/c` are removed.
3. `device_serial`: the reference is the serial number of an account's device.
4. `check_digit`: one mistyped digit or swapped pair, corrected through the Damm check
   digit, when exactly one open account fits (and the payer's number, when known, is its).
5. `payer_phone`: the payer's number (plain, masked, or SHA-256 hashed) belongs to exactly
   one open account.
6. Otherwise the payment waits in the suspense queue for an operator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import func
from sqlmodel import Session, col, select

from paygo import accountnumbers
from paygo.accounts import OPEN_STATUSES
from paygo.models import Account, AccountStatus, Customer, Device, Payment
from paygo.phones import msisdn_digest, try_normalise

RULES = ("account_number", "normalised_reference", "device_serial", "check_digit", "payer_phone")
# Prefixes people type before an account number: "#", "acc", "acc no.", "a/c", "ref".
_PREFIX = re.compile(r"^(?:#|account|acct|acc|a/c|ac|ref|no\.?|nr\.?)[\s:#.\-_/]*", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s\-._/]+")
#: Accounts a payment may be credited to (a paid-off one records an overpayment to refund).
CREDITABLE = (*OPEN_STATUSES, AccountStatus.PAID_OFF)
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_MASKED = re.compile(r"^\+?[0-9*xX•]+$")


@dataclass(frozen=True)
class Match:
    account: Account
    rule: str


@dataclass(frozen=True)
class NoMatch:
    reason: str


@dataclass(frozen=True)
class Payer:
    """What we know of the payer's number: all of it, a digest, a masked pattern, or nothing."""

    e164: str | None = None
    digest: str | None = None
    pattern: str | None = None  # E.164 with `_` for each hidden digit (a LIKE pattern)

    @property
    def known(self) -> bool:
        return bool(self.e164 or self.digest or self.pattern)

    def fits(self, phone: str) -> bool:
        """Whether this E.164 number could be the payer's (True when nothing is known)."""
        if self.e164:
            return phone == self.e164
        if self.digest:
            return msisdn_digest(phone) == self.digest
        if self.pattern:
            return len(phone) == len(self.pattern) and all(
                p in ("_", c) for p, c in zip(self.pattern, phone, strict=True)
            )
        return True


def read_payer(raw: str | None, default_country: str) -> Payer:
    """Interpret a payer number as providers send it: plain, masked or hashed."""
    value = (raw or "").strip()
    if _HEX64.match(value):
        return Payer(digest=value.lower())
    if _MASKED.match(value) and any(c in value for c in "*xX•"):
        digits = re.sub(r"[*xX•]", "_", value.lstrip("+"))
        if digits.startswith("0"):
            code = phonenumbers.country_code_for_region(default_country)
            digits = f"{code}{digits[1:]}"
        return Payer(pattern="+" + digits) if sum(c.isdigit() for c in digits) >= 4 else Payer()
    e164 = try_normalise(value, default_country) if value else None
    return Payer(e164=e164)


def normalise_reference(reference: str) -> str:
    """Strip prefixes, separators and case: ` Acc. No 1000-0018 ` -> `10000018`."""
    text = reference.strip()
    for _ in range(3):  # "acc no. #123": strip prefixes one after the other
        stripped = _PREFIX.sub("", text, count=1).strip()
        if stripped == text or not stripped:
            break
        text = stripped
    return _SEPARATORS.sub("", text).lower()


def match_payment(*, session: Session, payment: Payment, default_country: str) -> Match | NoMatch:
    """Find the account of a payment by the rules above, in order."""
    reference = (payment.reference or "").strip()
    payer = read_payer(payment.payer, default_country)
    reasons: list[str] = []
    if reference:
        found = _by_reference(session, reference, payer, reasons)
        if found is not None and found.account.status not in CREDITABLE:
            # The reference is clear, but crediting a returned box would feed its new holder.
            return NoMatch(
                f"reference {reference!r} is account {found.account.number}, "
                f"which is {found.account.status}"
            )
        if found is not None:
            return found
    else:
        reasons.append("no reference")
    account = _by_payer(session, payer, reasons)
    if account is not None:
        return Match(account, "payer_phone")
    return NoMatch("; ".join(reasons))


def _by_reference(
    session: Session, reference: str, payer: Payer, reasons: list[str]
) -> Match | None:
    account = account_by_number(session, reference)
    if account is not None:
        return Match(account, "account_number")
    normalised = normalise_reference(reference)
    account = account_by_number(session, normalised) if normalised != reference else None
    if account is not None:
        return Match(account, "normalised_reference")
    account = account_by_serial(session, reference)
    if account is not None:
        return Match(account, "device_serial")
    account = _by_correction(session, normalised, payer, reasons)
    return Match(account, "check_digit") if account is not None else None


def account_by_number(session: Session, number: str) -> Account | None:
    """The account with exactly this number."""
    if not number:
        return None
    return session.exec(select(Account).where(Account.number == number)).first()


def account_by_serial(session: Session, reference: str) -> Account | None:
    """The account holding the device with this serial (spaces, dashes and case ignored)."""
    device_id = session.exec(select(Device.id).where(Device.serial == reference)).first()
    if device_id is None:
        key = _SEPARATORS.sub("", reference).upper()
        squeezed = func.upper(
            func.replace(func.replace(func.replace(col(Device.serial), " ", ""), "-", ""), ".", "")
        )
        device_id = session.exec(select(Device.id).where(squeezed == key)).first() if key else None
    if device_id is None:
        return None
    holders = session.exec(
        select(Account).where(Account.device_id == device_id).order_by(col(Account.id))
    ).all()
    open_ = [a for a in holders if a.status in OPEN_STATUSES]
    if len(holders) == 1:
        return holders[0]
    return open_[0] if len(open_) == 1 else None


def correction_candidates(session: Session, normalised: str) -> Sequence[Account]:
    """Open accounts one typo (a digit, or an adjacent swap) away from an invalid number."""
    if not normalised.isdigit() or accountnumbers.is_valid(normalised):
        return []
    numbers = list(accountnumbers.corrections(normalised))
    if not numbers:
        return []
    return session.exec(
        select(Account)
        .where(col(Account.number).in_(numbers))
        .where(col(Account.status).in_(OPEN_STATUSES))
    ).all()


def accepts_reference(*, session: Session, reference: str | None) -> bool:
    """Validation: refuse only an account number that fails its check digit and has no
    unique correction; anything plausible is accepted and sorted out after payment."""
    text = (reference or "").strip()
    normalised = normalise_reference(text)
    if (
        not normalised.isdigit()
        or len(normalised) != accountnumbers.LENGTH
        or accountnumbers.is_valid(normalised)
    ):
        return True
    if (
        account_by_number(session, text)
        or account_by_number(session, normalised)
        or account_by_serial(session, text)
    ):
        return True
    return len(correction_candidates(session, normalised)) == 1


def _by_correction(
    session: Session, normalised: str, payer: Payer, reasons: list[str]
) -> Account | None:
    candidates = correction_candidates(session, normalised)
    if len(candidates) != 1:
        reasons.append(
            f"reference {normalised!r} is no account"
            + (f"; {len(candidates)} open accounts are one typo away" if candidates else "")
        )
        return None
    account = candidates[0]
    phone = session.exec(select(Customer.phone).where(Customer.id == account.customer_id)).one()
    if not payer.fits(phone):
        reasons.append(
            f"reference {normalised!r} is one typo from account {account.number}, "
            "but the payer's number is not that account's"
        )
        return None
    return account


def _by_payer(session: Session, payer: Payer, reasons: list[str]) -> Account | None:
    if not payer.known:
        reasons.append("the payer's number is unknown")
        return None
    query = (
        select(Account, Customer.phone)
        .join(Customer, col(Customer.id) == col(Account.customer_id))
        .where(col(Account.status).in_(OPEN_STATUSES))
    )
    if payer.e164:
        query = query.where(Customer.phone == payer.e164)
    elif payer.pattern:
        query = query.where(col(Customer.phone).like(payer.pattern))
    elif payer.digest:
        query = query.where(Customer.phone_digest == payer.digest)
    accounts = [a for a, phone in session.exec(query) if payer.fits(phone)]
    if len(accounts) == 1:
        return accounts[0]
    reasons.append(f"the payer's number has {len(accounts)} open accounts")
    return None
