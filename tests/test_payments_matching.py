"""The matching rules, in order, each recorded on the payment; nothing guessed beyond them."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from paygo import accountnumbers
from paygo.gateway import Gateway
from paygo.models import Account, AccountStatus, Payment, PaymentStatus, utcnow
from paygo.payments import matching
from paygo.payments.intake import store_notice
from paygo.payments.matching import normalise_reference, read_payer
from paygo.payments.notice import NoticeStatus, PaymentNotice
from paygo.payments.tasks import reconcile
from paygo.phones import msisdn_digest
from tests.factories import make_account, make_device, make_plan
from tests.payment_helpers import account_numbered, digest, fresh, receipt_number


def pay(
    gateway: Gateway,
    reference: str | None,
    payer: str | None = None,
    amount: str = "150",
    currency: str = "KES",
) -> Payment:
    """Store a payment as a callback would, reconcile it, and read it back."""
    notice = PaymentNotice(
        provider="mpesa",
        provider_txn_id=receipt_number(),
        status=NoticeStatus.PAID,
        amount=amount,
        currency=currency,
        reference=reference,
        payer=payer,
    )
    with gateway.db.transaction() as session:
        stored = store_notice(session=session, notice=notice, raw="{}", now=utcnow())
        assert stored is not None
    reconcile(gateway, stored.payment_id)
    with gateway.db.session() as session:
        payment = session.get(Payment, stored.payment_id)
        assert payment is not None
        return payment


def open_account(
    session: Session, gateway: Gateway, phone: str | None = None, **options: object
) -> Account:
    account = make_account(session, gateway, phone=phone, **options)  # type: ignore[arg-type]
    session.commit()
    return account


def typo_of(number: str) -> str:
    """The number with its second digit changed: fails the check digit."""
    wrong = number[0] + str((int(number[1]) + 1) % 10) + number[2:]
    assert not accountnumbers.is_valid(wrong)
    return wrong


def test_exact_account_number_matches_first(session: Session, gateway: Gateway) -> None:
    account = open_account(session, gateway)
    payment = pay(gateway, account.number)
    assert (payment.status, payment.match_rule) == ("credited", "account_number")
    assert payment.account_id == account.id


@pytest.mark.parametrize(
    "typed",
    [
        "{n}",
        " {n} ",
        "{a}-{b}",
        "{a} {b}",
        "{a}.{b}",
        "#{n}",
        "acc {n}",
        "ACC-{n}",
        "Acc. No. {n}",
        "a/c {a} {b}",
        "A/C#{n}",
        "account: {n}",
        "acc{n}",
        "Ref {n}",
    ],
)
def test_reference_is_matched_after_normalising(
    session: Session, gateway: Gateway, typed: str
) -> None:
    account = open_account(session, gateway)
    n = account.number
    payment = pay(gateway, typed.format(n=n, a=n[:4], b=n[4:]))
    assert payment.account_id == account.id
    assert payment.match_rule == (
        "account_number" if typed.strip() == "{n}" else "normalised_reference"
    )


def test_normalising_strips_prefixes_separators_and_case() -> None:
    assert normalise_reference(" Acc. No. 1000-0018 ") == "10000018"
    assert normalise_reference("SN-AB.12") == "snab12"


@pytest.mark.parametrize("typed", ["{s}", "{lower}", "{dashed}"])
def test_device_serial_matches_the_account_holding_the_box(
    session: Session, gateway: Gateway, typed: str
) -> None:
    device = make_device(session, gateway, serial="SPX-2024-00417")
    account = open_account(session, gateway, device=device)
    payment = pay(
        gateway, typed.format(s="SPX-2024-00417", lower="spx202400417", dashed="SPX 2024 00417")
    )
    assert (payment.account_id, payment.match_rule) == (account.id, "device_serial")


@pytest.mark.parametrize("kind", ["digit", "swap"])
def test_single_typo_is_corrected_through_the_check_digit(
    session: Session, gateway: Gateway, kind: str
) -> None:
    account = open_account(session, gateway)
    n = account.number
    typed = typo_of(n) if kind == "digit" else n[:-2] + n[-1] + n[-2]
    assert typed != n
    payment = pay(gateway, typed, payer=None)
    assert (payment.account_id, payment.match_rule) == (account.id, "check_digit")


def test_typo_correction_needs_the_known_payer_to_be_the_accounts(
    session: Session, gateway: Gateway
) -> None:
    account = open_account(session, gateway, phone="+254711000001")
    open_account(session, gateway, phone="+254722000002")
    payment = pay(gateway, typo_of(account.number), payer="254722000002")
    # The payer's own account wins by rule 5 rather than the stranger's by correction.
    assert payment.match_rule == "payer_phone" and payment.account_id != account.id


def test_typo_correction_accepts_a_masked_payer_that_fits(
    session: Session, gateway: Gateway
) -> None:
    account = open_account(session, gateway, phone="+254711000001")
    payment = pay(gateway, typo_of(account.number), payer="2547****0001")
    assert payment.match_rule == "check_digit"


def _two_accounts_one_typo_apart(session: Session, gateway: Gateway) -> str:
    """Two open accounts that are both one typo from the same invalid string."""
    for seq in range(1, 200):
        first = accountnumbers.from_sequence(seq)
        wrong = typo_of(first)
        others = [c for c in accountnumbers.corrections(wrong) if c != first]
        if others:
            account_numbered(session, gateway, first)
            account_numbered(session, gateway, others[0])
            return wrong
    raise AssertionError("no ambiguous typo found")


def test_ambiguous_typo_goes_to_suspense(session: Session, gateway: Gateway) -> None:
    wrong = _two_accounts_one_typo_apart(session, gateway)
    payment = pay(gateway, wrong, payer=None)
    assert payment.status == PaymentStatus.UNMATCHED and payment.account_id is None
    assert "2 open accounts are one typo away" in (payment.status_reason or "")


@pytest.mark.parametrize(
    "payer",
    [
        "254711000001",
        "+254711000001",
        "0711000001",
        "2547****0001",
        "2547xxxx0001",
        digest("254711000001"),
        digest("254711000001").upper(),
    ],
)
def test_payer_number_plain_masked_or_hashed_matches_its_only_account(
    session: Session, gateway: Gateway, payer: str
) -> None:
    account = open_account(session, gateway, phone="+254711000001")
    open_account(session, gateway, phone="+254733123456")
    payment = pay(gateway, "SOLAR", payer=payer)
    assert (payment.account_id, payment.match_rule) == (account.id, "payer_phone")


def test_payer_with_two_open_accounts_goes_to_suspense(session: Session, gateway: Gateway) -> None:
    open_account(session, gateway, phone="+254711000001")
    open_account(session, gateway, phone="+254711000001")
    payment = pay(gateway, "SOLAR", payer="254711000001")
    assert payment.status == PaymentStatus.UNMATCHED
    assert "2 open accounts" in (payment.status_reason or "")


def test_masked_payer_fitting_two_customers_goes_to_suspense(
    session: Session, gateway: Gateway
) -> None:
    open_account(session, gateway, phone="+254711000001")
    open_account(session, gateway, phone="+254722000001")
    assert pay(gateway, None, payer="2547****0001").status == PaymentStatus.UNMATCHED


def test_paid_off_account_of_the_payer_is_not_matched_by_phone(
    session: Session, gateway: Gateway
) -> None:
    account = open_account(session, gateway, phone="+254711000001")
    account.status = AccountStatus.PAID_OFF
    session.add(account)
    session.commit()
    assert pay(gateway, "SOLAR", payer="254711000001").status == PaymentStatus.UNMATCHED


def test_nothing_is_guessed_beyond_the_rules(session: Session, gateway: Gateway) -> None:
    open_account(session, gateway, phone="+254711000001")
    payment = pay(gateway, "light bill", payer="254799999999")
    assert payment.status == PaymentStatus.UNMATCHED and payment.match_rule is None
    assert "no account" in (payment.status_reason or "")


def test_a_clear_reference_to_a_repossessed_account_is_not_credited(
    session: Session, gateway: Gateway
) -> None:
    account = open_account(session, gateway, phone="+254711000001")
    account.status = AccountStatus.REPOSSESSED
    session.add(account)
    session.commit()
    payment = pay(gateway, account.number, payer="254711000001")
    assert payment.status == PaymentStatus.UNMATCHED
    assert "repossessed" in (payment.status_reason or "")


def test_payment_to_a_paid_off_account_is_credited_as_overpayment(
    session: Session, gateway: Gateway
) -> None:
    plan = make_plan(session, total_price=10000)
    account = open_account(session, gateway, plan=plan)
    assert pay(gateway, account.number, amount="100").status == "credited"
    payment = pay(gateway, account.number, amount="50")
    assert payment.status == "credited"
    assert fresh(session, Account, account.id).overpayment == 5000


def test_payer_reading_keeps_what_is_known() -> None:
    assert read_payer("254711000001", "KE").e164 == "+254711000001"
    assert read_payer("2547****0001", "KE").pattern == "+2547____0001"
    assert read_payer("07****0001", "KE").pattern == "+2547____0001"
    assert read_payer("****", "KE").known is False
    assert read_payer(digest("254711000001"), "KE").fits("+254711000001")
    assert not read_payer(digest("254711000001"), "KE").fits("+254711000002")
    assert read_payer(None, "KE").fits("+254711000001")


def test_hashed_payer_added_after_the_first_hashed_payment_is_still_matched(
    session: Session, gateway: Gateway
) -> None:
    first = open_account(session, gateway, phone="+254711000001")
    assert pay(gateway, "SOLAR", payer=digest("254711000001")).account_id == first.id
    later = open_account(session, gateway, phone="+254722000002")
    payment = pay(gateway, "SOLAR", payer=digest("254722000002"))
    assert (payment.account_id, payment.match_rule) == (later.id, "payer_phone")


def test_a_hashed_payer_is_found_by_the_stored_digest_not_by_hashing_every_customer(
    session: Session, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        open_account(session, gateway, phone=f"+2547110000{i:02d}")
    hashed: list[str] = []

    def counting(e164: str) -> str:
        hashed.append(e164)
        return msisdn_digest(e164)

    monkeypatch.setattr(matching, "msisdn_digest", counting)
    for i in range(3):
        assert pay(gateway, "SOLAR", payer=digest(f"2547110000{i:02d}")).status == "credited"
    # Only each payment's own candidate is hashed again (to confirm it); no one else's.
    assert len(hashed) == 3
