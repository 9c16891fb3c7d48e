"""What `paygo accounts show` reads and prints: an account's credit state, and the advice
an operator needs when the server's count runs ahead of the box's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from paygo.cli.output import moment
from paygo.credit import days_left_shown, next_payment_due
from paygo.models import Account, AccountStatus, Customer, Device, PaymentPlan, Token
from paygo.money import format_minor
from paygo.texts import formats
from paygo.tokens.codec import MAX_COUNT_JUMP, MAX_COUNT_JUMP_SYNC

#: The most counts the server may run ahead of the box and still reach it with a SET_TIME
#: (the recovery code itself takes one or two counts): warnings never come later than this.
SAFE_DRIFT = MAX_COUNT_JUMP - 2


def drift_advice(device: Device, *, threshold: int, account_number: str) -> str | None:
    """What to tell an operator when the server's count runs ahead of the box's, if anything."""
    ahead = device.token_count - device.entered_count
    if ahead < min(max(1, threshold), SAFE_DRIFT):
        return None
    head = (
        f"the server is {ahead} counts ahead of the last count confirmed on the box "
        f"({device.entered_count}); a box rejects codes more than {MAX_COUNT_JUMP} "
        f"counts ahead of its own"
    )
    issue = f"paygo tokens issue {account_number}"
    if ahead <= SAFE_DRIFT:
        return (
            f"{head}: if the customer typed every code, record it (paygo tokens entered "
            f"{account_number}); if not, send the server's remaining days "
            f"({issue} --type set --reason ...)"
        )
    sync_reach = MAX_COUNT_JUMP if device.extended_tokens else MAX_COUNT_JUMP_SYNC
    if ahead <= sync_reach - 2:  # the sync code takes one or two counts too
        return (
            f"{head}: newer codes are refused unless the box took some; resynchronise "
            f"it ({issue} --type sync --reason ...), then send the server's remaining "
            f"days ({issue} --type set --reason ...)"
        )
    return (
        f"{head}: no code from the server can reach the box any more; a technician "
        f"must reset it, or record the count it shows (paygo tokens entered "
        f"{account_number} --count N)"
    )


def account_view(
    *, session: Session, account: Account, now: datetime, drift_warning: int = 40
) -> dict[str, Any]:
    """The credit state an operator or a customer sees, as plain data."""
    plan = session.get(PaymentPlan, account.plan_id)
    device = session.get(Device, account.device_id)
    customer = session.get(Customer, account.customer_id)
    assert plan is not None and device is not None and customer is not None
    left_to_pay = (
        None if plan.total_price is None else max(0, plan.total_price - account.total_paid)
    )
    tokens = session.exec(
        select(func.count()).select_from(Token).where(col(Token.account_id) == account.id)
    ).one()
    view: dict[str, Any] = {
        "account_number": account.number,
        "status": account.status,
        "customer": {
            "id": customer.id,
            "name": customer.name,
            "phone": customer.phone,
            "language": customer.language,
            "timezone": customer.timezone,
        },
        "device": device.serial,
        "device_status": device.status,
        "plan": plan.name,
        "currency": plan.currency,
        "credit_until": account.credit_until,
        "days_left": days_left_shown(account, now),
        "paid_off_at": account.paid_off_at,
        "total_paid": account.total_paid,
        "left_to_pay": left_to_pay,
        "remainder": account.remainder,
        "overpayment": account.overpayment,
        "deposit_left": max(0, plan.deposit - account.total_paid),
        "next_payment_due": next_payment_due(plan, account),
        "token_count": device.token_count,
        "entered_count": device.entered_count,
        "counts_ahead": device.token_count - device.entered_count,
        "tokens_issued": tokens,
        "warnings": [],
    }
    warning = drift_advice(device, threshold=drift_warning, account_number=account.number)
    if warning:
        view["warnings"].append(warning)
    return view


def describe(view: dict[str, Any]) -> list[str]:
    """Human lines for an account view."""
    cur, who = view["currency"], view["customer"]
    if view["status"] == AccountStatus.PAID_OFF:
        credit = f"paid off {moment(view['paid_off_at'])}: the box stays on for good"
    else:
        left = formats.days(view["days_left"])
        credit = f"credit until: {moment(view['credit_until'])} ({left} {_days(left)} left)"
    lines = [
        f"account {view['account_number']} ({view['status']}), device {view['device']}, "
        f"plan {view['plan']}",
        f"customer: {who['name']}, {who['phone']}, language {who['language']}",
        credit,
        f"paid: {format_minor(view['total_paid'], cur)}; left to pay: "
        + ("pay-per-use" if view["left_to_pay"] is None else format_minor(view["left_to_pay"], cur))
        + (
            f"; deposit left: {format_minor(view['deposit_left'], cur)}"
            if view["deposit_left"]
            else ""
        ),
        f"remainder: {format_minor(view['remainder'], cur)}; overpayment: "
        f"{format_minor(view['overpayment'], cur)}",
        f"device count {view['token_count']} (last known on the box: {view['entered_count']})",
    ]
    return lines + [f"warning: {w}" for w in view["warnings"]]


def _days(shown: str) -> str:
    return "day" if shown == "1" else "days"
