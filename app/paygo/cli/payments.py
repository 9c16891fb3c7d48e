"""`paygo payments`: the suspense queue, assignments, reversals and statement imports."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from paygo.cli.output import emit, handles_errors, json_option
from paygo.cli.tokens import record_payment
from paygo.errors import InvalidInput
from paygo.extensions import current_gateway
from paygo.messaging.sending import send_committed
from paygo.models import Payment, utcnow
from paygo.money import format_minor
from paygo.payments import reconcile, reversals, tasks
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
    """Mobile-money payments: suspense queue, assignment, reversal, statements."""


@payments_group.command("unmatched")
@click.option("--limit", default=100, show_default=True)
@json_option
@with_appcontext
@handles_errors
def unmatched(limit: int, as_json: bool) -> None:
    """List payments no rule could place (the suspense queue), oldest first."""
    with current_gateway().db.session() as session:
        rows = [payment_dict(p) for p in reconcile.unmatched_payments(session=session, limit=limit)]
    emit(
        as_json,
        {"payments": rows},
        *(
            f"#{r['id']} {r['provider']} {r['provider_txn_id']} {_amount(r)} "
            f"ref={r['reference']!r} payer={r['payer']} - {r['status_reason']}"
            for r in rows
        )
        or ["no unmatched payments"],
    )


@payments_group.command("assign")
@click.argument("payment_id", type=int)
@click.argument("account")
@click.option("--actor", default="cli", show_default=True, help="Who is assigning it.")
@json_option
@with_appcontext
@handles_errors
def assign(payment_id: int, account: str, actor: str, as_json: bool) -> None:
    """Credit an unmatched payment to ACCOUNT, exactly as an automatic match would."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        outcome = reconcile.assign_payment(
            session=session,
            keys=gateway.keys,
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
@with_appcontext
@handles_errors
def reverse(payment_id: int, reason: str, actor: str, as_json: bool) -> None:
    """Take a credited payment back: credit-until moves back, the box is set to match."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        done = reversals.reverse_payment(
            session=session,
            keys=gateway.keys,
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
@with_appcontext
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
@with_appcontext
@handles_errors
def sweep(as_json: bool) -> None:
    """Re-queue payments stored but never reconciled (a lost job, a queue outage)."""
    count = tasks.sweep_payments(current_gateway())
    emit(as_json, {"requeued": count}, f"{count} payment(s) re-queued")


# Cash and manual payments: the token module's command, credited by the same path.
payments_group.add_command(record_payment)

commands = [payments_group]
