"""`paygo tokens` and `paygo payments record`: the operator's token surface."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from app import accounts
from app.cli.output import emit, handles_errors, json_option
from app.extensions import current_gateway
from app.models import Account, PaymentPlan, Token, utcnow
from app.money import format_minor, to_minor
from app.tokens import operator
from app.tokens.codec import TokenKind, format_code
from app.tokens.issue import recent_tokens

KINDS = {"add": TokenKind.ADD_TIME, "set": TokenKind.SET_TIME,
         "disable": TokenKind.DISABLE_PAYG, "sync": TokenKind.COUNTER_SYNC}


def token_dict(token: Token) -> dict[str, Any]:
    return {"token": token.code, "formatted": format_code(token.code), "count": token.count,
            "type": token.type, "days": token.days, "reason": token.reason,
            "created_at": token.created_at, "created_by": token.created_by,
            "payment_id": token.payment_id}


def _summary(tokens: list[Token]) -> dict[str, Any]:
    """One object: the first code at the top level, every code under `tokens`."""
    first = token_dict(tokens[0]) if tokens else {"token": None, "count": None}
    return {**first, "days": sum(t.days for t in tokens),
            "tokens": [token_dict(t) for t in tokens]}


@click.group("tokens")
def tokens_group() -> None:
    """Issue and list device tokens."""


@tokens_group.command("issue")
@click.argument("number")
@click.option("--type", "kind", type=click.Choice(sorted(KINDS)), required=True)
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Days for add/set; set without --days uses the server's remaining days.")
@click.option("--reason", required=True)
@click.option("--actor", default="cli", show_default=True, help="Who is issuing it.")
@json_option
@with_appcontext
@handles_errors
def issue(number: str, kind: str, days: int | None, reason: str, actor: str,
          as_json: bool) -> None:
    """Issue an operator token for an account's box and print the code."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        account = accounts.get_account(session=session, number=number)
        tokens = operator.operator_token(session=session, keys=gateway.keys, account=account,
                                         kind=KINDS[kind], days=days, reason=reason,
                                         actor=actor, now=utcnow())
        data = _summary(tokens)
    emit(as_json, data, *(f"{format_code(t['token'])}  ({t['type']}, {t['days']} days, "
                          f"count {t['count']})" for t in data["tokens"]))


@tokens_group.command("list")
@click.argument("number")
@click.option("--limit", default=20, show_default=True)
@json_option
@with_appcontext
@handles_errors
def list_(number: str, limit: int, as_json: bool) -> None:
    """Show an account's token history, newest first."""
    with current_gateway().db.session() as session:
        account = accounts.get_account(session=session, number=number)
        rows = [token_dict(t) for t in recent_tokens(session=session,
                                                     device_id=account.device_id, limit=limit)]
    emit(as_json, {"account_number": number, "tokens": rows},
         *(f"{r['created_at']:%Y-%m-%d %H:%M}  {r['formatted']:<24} {r['type']:<13} "
           f"{r['days']:>4} days  count {r['count']}  {r['reason']}" for r in rows)
         or ["no tokens yet"])


@tokens_group.command("entered")
@click.argument("number")
@click.option("--count", type=int, default=None,
              help="The count the box has reached (default: the newest token).")
@json_option
@with_appcontext
@handles_errors
def entered(number: str, count: int | None, as_json: bool) -> None:
    """Record that the box has taken the tokens up to COUNT (clears the drift warning)."""
    with current_gateway().db.transaction() as session:
        account = accounts.get_account(session=session, number=number)
        device = operator.confirm_entered(session=session, account=account, actor="cli",
                                          count=count)
        data = {"device": device.serial, "entered_count": device.entered_count}
    emit(as_json, data, f"{data['device']} has taken tokens up to count "
                        f"{data['entered_count']}")


@click.command("record")
@click.argument("number")
@click.argument("amount")
@click.option("--reference", default=None, help="Receipt number; recording it twice is harmless.")
@click.option("--actor", default="cli", show_default=True)
@json_option
@with_appcontext
@handles_errors
def record_payment(number: str, amount: str, reference: str | None, actor: str,
                   as_json: bool) -> None:
    """Record a cash or manual payment (major units) and print the token it buys."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        account: Account = accounts.get_account(session=session, number=number)
        plan = session.get(PaymentPlan, account.plan_id)
        assert plan is not None
        result = operator.record_manual_payment(
            session=session, keys=gateway.keys, account=account, actor=actor,
            amount=to_minor(amount, plan.currency), reference=reference, now=utcnow())
        data = {**_summary(result.tokens), "payment_id": result.payment_id,
                "days": result.quote.days, "credit_until": result.quote.credit_until,
                "already_credited": result.already_credited,
                "remainder": result.quote.remainder_after,
                "overpayment": result.quote.overpayment, "message_id": result.message_id}
        currency = plan.currency
    lines = [f"{format_code(t['token'])}  ({t['days']} days, count {t['count']})"
             for t in data["tokens"]] or [
        f"no token: {format_minor(data['remainder'], currency)} kept for the next payment"]
    emit(as_json, data, *lines)


commands = [tokens_group]
