"""`paygo tokens` and `paygo payments record`: the operator's token surface."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from paygo import accounts
from paygo.cli.output import emit, handles_errors, json_option
from paygo.extensions import current_gateway
from paygo.messaging.sending import send_committed
from paygo.models import Account, Device, PaymentPlan, Token, utcnow
from paygo.money import format_minor, to_minor
from paygo.tokens import operator
from paygo.tokens.codec import TokenKind, format_code
from paygo.tokens.issue import CreditResult, recent_tokens
from paygo.tokens.receipts import days_text

KINDS = {
    "add": TokenKind.ADD_TIME,
    "set": TokenKind.SET_TIME,
    "disable": TokenKind.DISABLE_PAYG,
    "sync": TokenKind.COUNTER_SYNC,
}


def token_days(token: Token, divider: int) -> float:
    """The days a token adds or sets (part days on a device with a time divider)."""
    if token.type in (TokenKind.ADD_TIME, TokenKind.SET_TIME):
        return token.value_raw / divider
    return 0


def token_dict(token: Token, divider: int = 1) -> dict[str, Any]:
    """A stored token as plain data."""
    return {
        "token": token.code,
        "formatted": format_code(token.code),
        "count": token.count,
        "type": token.type,
        "days": token_days(token, divider),
        "reason": token.reason,
        "created_at": token.created_at,
        "created_by": token.created_by,
        "payment_id": token.payment_id,
    }


def _summary(tokens: list[Token], divider: int) -> dict[str, Any]:
    """One object: the first code at the top level, every code under `tokens`."""
    first = token_dict(tokens[0], divider) if tokens else {"token": None, "count": None}
    return {
        **first,
        "days": sum(token_days(t, divider) for t in tokens),
        "tokens": [token_dict(t, divider) for t in tokens],
    }


def _line(token: dict[str, Any]) -> str:
    what = {
        TokenKind.DISABLE_PAYG: "unlocks the box for good",
        TokenKind.COUNTER_SYNC: "resynchronises the count",
    }.get(token["type"], f"{days_text(token['days'])} days")
    return f"{token['formatted']}  ({token['type']}, {what}, count {token['count']})"


@click.group("tokens")
def tokens_group() -> None:
    """Issue and list device tokens."""


@tokens_group.command("issue")
@click.argument("number")
@click.option("--type", "kind", type=click.Choice(sorted(KINDS)), required=True)
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=None,
    help="Days for add/set; set without --days uses the server's remaining days.",
)
@click.option("--reason", required=True)
@click.option("--actor", default="cli", show_default=True, help="Who is issuing it.")
@json_option
@with_appcontext
@handles_errors
def issue(number: str, kind: str, days: int | None, reason: str, actor: str, as_json: bool) -> None:
    """Issue an operator token for an account's box and print the code."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        account = accounts.get_account(session=session, number=number)
        issued = operator.operator_token(
            session=session,
            keys=gateway.keys,
            account=account,
            kind=KINDS[kind],
            days=days,
            reason=reason,
            actor=actor,
            now=utcnow(),
        )
        device = session.get(Device, account.device_id)
        data = _summary(issued.tokens, device.time_divider if device else 1)
    send_committed(gateway, issued.outgoing)
    emit(as_json, data, *(_line(t) for t in data["tokens"]))


@tokens_group.command("list")
@click.argument("number")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
@with_appcontext
@handles_errors
def list_(number: str, limit: int, as_json: bool) -> None:
    """Show an account's token history, newest first."""
    with current_gateway().db.session() as session:
        account = accounts.get_account(session=session, number=number)
        device = session.get(Device, account.device_id)
        divider = device.time_divider if device else 1
        rows = [
            token_dict(t, divider)
            for t in recent_tokens(
                session=session, device_id=account.device_id, account_id=account.id, limit=limit
            )
        ]
    lines = [
        f"{r['created_at']:%Y-%m-%d %H:%M}  {r['formatted']:<26} {r['type']:<13} "
        f"{days_text(r['days']):>6} days  count {r['count']}  {r['reason']}"
        for r in rows
    ]
    emit(as_json, {"account_number": number, "tokens": rows}, *lines or ["no tokens yet"])


@tokens_group.command("entered")
@click.argument("number")
@click.option(
    "--count",
    type=click.IntRange(min=0),
    default=None,
    help="The count the box has reached (default: the newest token).",
)
@click.option("--actor", default="cli", show_default=True, help="Who confirmed it.")
@json_option
@with_appcontext
@handles_errors
def entered(number: str, count: int | None, actor: str, as_json: bool) -> None:
    """Record that the box has taken the tokens up to COUNT (clears the drift warning)."""
    with current_gateway().db.transaction() as session:
        account = accounts.get_account(session=session, number=number)
        device = operator.confirm_entered(
            session=session, account=account, actor=actor, count=count
        )
        data = {
            "device": device.serial,
            "entered_count": device.entered_count,
            "token_count": device.token_count,
        }
    emit(
        as_json,
        data,
        f"{data['device']} has taken tokens up to count "
        f"{data['entered_count']} (server count {data['token_count']})",
    )


@click.command("record")
@click.argument("number")
@click.argument("amount")
@click.option("--reference", default=None, help="Receipt number; recording it twice is harmless.")
@click.option("--actor", default="cli", show_default=True)
@json_option
@with_appcontext
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
        result = operator.record_manual_payment(
            session=session,
            keys=gateway.keys,
            account=account,
            actor=actor,
            amount=to_minor(amount, plan.currency),
            reference=reference,
            now=utcnow(),
        )
        data = {
            **_summary(result.tokens, device.time_divider),
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
    emit(as_json, data, *(_line(t) for t in data["tokens"]), _outcome(result, data, plan.currency))


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
        text = f"{days_text(q.days)} days, credit until {data['credit_until']:%Y-%m-%d %H:%M}"
    else:
        text = "no token: not enough for a step of time"
    if q.remainder_after and not result.already_credited:
        text += f"; {money(q.remainder_after)} kept for the next payment"
    if q.overpayment:
        text += f"; {money(q.overpayment)} overpaid, to refund"
    return text


commands = [tokens_group]
