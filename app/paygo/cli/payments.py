"""`paygo payments`: cash payments, the suspense queue, assignments, reversals, statements."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from paygo import accounts
from paygo.cli.context import current_gateway
from paygo.cli.output import (
    emit,
    emit_page,
    handles_errors,
    json_option,
    local,
    page_options,
    short,
    since_option,
    table,
    utc_option,
)
from paygo.cli.tokens import line, summary
from paygo.errors import InvalidInput
from paygo.ledger.crediting import CreditResult
from paygo.messaging.sending import send_committed
from paygo.models import Account, Device, Payment, PaymentPlan, utcnow
from paygo.money import format_minor, to_minor
from paygo.payments import listing, manual, reconcile, reversals, tasks
from paygo.texts import formats
from paygo.tokens.codec import format_code


def payment_dict(payment: Payment) -> dict[str, Any]:
    """A payment as plain data, without the raw payload."""
    return payment.model_dump(exclude={"raw"})


def _amount(payment: dict[str, Any]) -> str:
    try:
        return format_minor(payment["amount"], payment["currency"])
    except InvalidInput:  # a rejected payment may carry a currency we do not know
        return f"{payment['amount']} {payment['currency']}"


@click.group("payments")
def payments_group() -> None:
    """Payments: record cash, list, suspense queue, assign, reverse."""


@payments_group.command("record")
@click.argument("number")
@click.argument("amount")
@click.option("--reference", default=None, help="Receipt number; recording it twice is harmless.")
@click.option("--actor", default="cli", show_default=True)
@json_option
@handles_errors
def record_payment(
    number: str, amount: str, reference: str | None, actor: str, as_json: bool
) -> None:
    """Record a cash or manual payment (major units) and print the token it buys."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        account: Account = accounts.get_account(session=session, number=number)
        plan = session.get(PaymentPlan, account.plan_id)
        device = session.get(Device, account.device_id)
        assert plan is not None and device is not None
        result = manual.record_manual_payment(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            account=account,
            actor=actor,
            amount=to_minor(amount, plan.currency),
            reference=reference,
            now=utcnow(),
        )
        data = {
            **summary(result.tokens, device.time_divider),
            "payment_id": result.payment_id,
            "days": result.quote.days,
            "credit_until": result.quote.credit_until,
            "already_credited": result.already_credited,
            "remainder": result.quote.remainder_after,
            "deposit_left": result.quote.deposit_left,
            "below_minimum": result.quote.below_minimum,
            "pays_off": result.quote.pays_off,
            "overpayment": result.quote.overpayment,
            "message_id": result.message_id,
        }
    send_committed(gateway, result.outgoing)
    emit(as_json, data, *(line(t) for t in data["tokens"]), _outcome(result, data, plan.currency))


def _outcome(result: CreditResult, data: dict[str, Any], currency: str) -> str:
    """One line saying what the payment did, after its codes."""
    q = result.quote

    def money(minor: int) -> str:
        return format_minor(minor, currency)

    if result.already_credited:
        text = f"payment #{result.payment_id} was recorded before: nothing new credited"
    elif q.pays_off:
        text = "paid off: the box stays on for good"
    elif q.counted == 0 and q.overpayment:
        text = "the account is already paid off"
    elif q.deposit_left:
        text = f"no token yet: {money(q.deposit_left)} of the deposit still to pay"
    elif q.below_minimum:
        text = f"no token: below the minimum of {money(q.minimum)}, kept for the next payment"
    elif q.steps:
        text = f"{formats.days(q.days)} days, credit until {data['credit_until']:%Y-%m-%d %H:%M}"
    else:
        text = "no token: not enough for a step of time"
    if q.remainder_after and not result.already_credited:
        text += f"; {money(q.remainder_after)} kept for the next payment"
    if q.overpayment:
        text += f"; {money(q.overpayment)} overpaid, to refund"
    return text


def _payment_table(found: list[Payment]) -> list[str]:
    return table(
        [
            "ID",
            "RECEIVED",
            "PROVIDER",
            "TRANSACTION",
            "AMOUNT",
            "REFERENCE",
            "PAYER",
            "STATUS",
            "REASON",
        ],
        [
            (
                p.id,
                p.received_at,
                p.provider,
                p.provider_txn_id,
                _amount(payment_dict(p)),
                p.reference,
                p.payer,
                p.status,
                short(p.status_reason, 60),
            )
            for p in found
        ],
    )


@payments_group.command("list")
@click.option("--account", default=None, help="Only this account's payments.")
@click.option("--status", type=click.Choice(listing.STATUSES), default=None)
@click.option("--provider", default=None, help="mpesa, mtn_momo, airtel, africastalking, cash...")
@since_option
@page_options
@utc_option
@json_option
@handles_errors
def list_(
    account: str | None,
    status: str | None,
    provider: str | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List payments newest first, rejected and unmatched ones too, each with its reason."""
    with current_gateway().db.session() as session:
        account_id = accounts.get_account(session=session, number=account).id if account else None
        found = listing.list_payments(
            session=session,
            account_id=account_id,
            status=status,
            provider=provider,
            since=local(since),
            limit=limit,
            cursor=cursor,
        )
    rows = [payment_dict(p) for p in found.items]
    emit_page(as_json, "payments", rows, found.next, _payment_table(found.items), "no payments")


@payments_group.command("unmatched")
@page_options
@utc_option
@json_option
@handles_errors
def unmatched(limit: int, cursor: str | None, as_json: bool) -> None:
    """List payments no rule could place (the suspense queue), oldest first."""
    with current_gateway().db.session() as session:
        found = listing.suspense_queue(session=session, limit=limit, cursor=cursor)
    rows = [payment_dict(p) for p in found.items]
    lines = _payment_table(found.items)
    emit_page(as_json, "payments", rows, found.next, lines, "no unmatched payments")


@payments_group.command("assign")
@click.argument("payment_id", type=int)
@click.argument("account")
@click.option("--actor", default="cli", show_default=True, help="Who is assigning it.")
@json_option
@handles_errors
def assign(payment_id: int, account: str, actor: str, as_json: bool) -> None:
    """Credit an unmatched payment to ACCOUNT, exactly as an automatic match would."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        outcome = reconcile.assign_payment(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            payment_id=payment_id,
            account_number=account,
            actor=actor,
            now=utcnow(),
        )
    send_committed(gateway, outcome.outgoing)
    emit(
        as_json,
        {k: v for k, v in asdict(outcome).items() if k != "outgoing"},
        f"payment #{payment_id} credited to account {outcome.account_number}",
    )


@payments_group.command("reverse")
@click.argument("payment_id", type=int)
@click.option("--reason", required=True, help="Why the payment is taken back.")
@click.option("--actor", default="cli", show_default=True, help="Who is reversing it.")
@json_option
@handles_errors
def reverse(payment_id: int, reason: str, actor: str, as_json: bool) -> None:
    """Take a credited payment back: credit-until moves back, the box is set to match."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        done = reversals.reverse_payment(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            payment_id=payment_id,
            reason=reason,
            actor=actor,
            now=utcnow(),
        )
        codes = [
            {
                "token": t.code,
                "formatted": format_code(t.code),
                "count": t.count,
                "type": t.type,
                "days": t.days,
            }
            for t in done.tokens
        ]
    send_committed(gateway, done.outgoing)
    data = {
        "payment_id": done.payment_id,
        "account_number": done.account_number,
        "amount": done.amount,
        "days_removed": done.days_removed,
        "tokens": codes,
    }
    emit(
        as_json,
        data,
        f"payment #{payment_id} reversed on account {done.account_number} "
        f"({done.days_removed:g} days taken back)",
        *(
            f"SET_TIME code sent to the customer: {c['formatted']} ({c['days']} days)"
            for c in codes
        ),
    )


@payments_group.command("import-statement")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@handles_errors
def import_statement(path: Path, as_json: bool) -> None:
    """Add the payments of an M-Pesa portal statement (CSV) whose callbacks never came."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text; export the statement as CSV") from None
    report = tasks.import_statement(current_gateway(), text)
    emit(
        as_json,
        asdict(report),
        f"{report.new} new payment(s), {report.known} already known, "
        f"{report.unmatched} unmatched, {report.credited} credited"
        + (f", {report.rejected} rejected" if report.rejected else "")
        + f" ({report.skipped} non-payment line(s) skipped)",
        *(
            f"unmatched: payment #{i} (paygo payments assign {i} ACCOUNT)"
            for i in report.unmatched_ids
        ),
    )


@payments_group.command("sweep")
@json_option
@handles_errors
def sweep(as_json: bool) -> None:
    """Re-queue payments stored but never reconciled (a lost job, a queue outage)."""
    count = tasks.sweep_payments(current_gateway())
    emit(as_json, {"requeued": count}, f"{count} payment(s) re-queued")


commands = [payments_group]
