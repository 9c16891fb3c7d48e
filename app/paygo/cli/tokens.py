"""`paygo tokens`: issue, list and confirm an account's codes."""

from __future__ import annotations

from typing import Any

import click

from paygo import accounts
from paygo.cli.context import current_gateway
from paygo.cli.output import (
    emit,
    emit_page,
    handles_errors,
    json_option,
    page_options,
    short,
    table,
    utc_option,
)
from paygo.ledger import operator
from paygo.ledger.locks import hold_account
from paygo.messaging.sending import send_committed
from paygo.models import Device, Token, row_id, utcnow
from paygo.texts import formats
from paygo.tokens.codec import TokenKind, format_code
from paygo.tokens.issue import list_tokens

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


def summary(tokens: list[Token], divider: int) -> dict[str, Any]:
    """One object: the first code at the top level, every code under `tokens`."""
    first = token_dict(tokens[0], divider) if tokens else {"token": None, "count": None}
    return {
        **first,
        "days": sum(token_days(t, divider) for t in tokens),
        "tokens": [token_dict(t, divider) for t in tokens],
    }


def _gives(token: dict[str, Any]) -> str:
    """What a code does to the box, in words: `1 day`, `2.5 days`, `unlocks the box for good`."""
    if token["type"] == TokenKind.DISABLE_PAYG:
        return "unlocks the box for good"
    if token["type"] == TokenKind.COUNTER_SYNC:
        return "resynchronises the count"
    shown = formats.days(token["days"])
    return f"{shown} day" if shown == "1" else f"{shown} days"


def line(token: dict[str, Any]) -> str:
    return f"{token['formatted']}  ({token['type']}, {_gives(token)}, count {token['count']})"


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
@handles_errors
def issue(number: str, kind: str, days: int | None, reason: str, actor: str, as_json: bool) -> None:
    """Issue an operator token for an account's box and print the code."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        account = accounts.get_account(session=session, number=number)
        issued = operator.operator_token(
            session=session,
            keys=gateway.keys,
            texts=gateway.texts,
            held=hold_account(session=session, account_id=row_id(account.id)),
            kind=KINDS[kind],
            days=days,
            reason=reason,
            actor=actor,
            now=utcnow(),
        )
        device = session.get(Device, account.device_id)
        data = summary(issued.tokens, device.time_divider if device else 1)
    send_committed(gateway, issued.outgoing)
    emit(as_json, data, *(line(t) for t in data["tokens"]))


@tokens_group.command("list")
@click.argument("number")
@page_options
@utc_option
@json_option
@handles_errors
def list_(number: str, limit: int, cursor: str | None, as_json: bool) -> None:
    """Show an account's token history, newest first."""
    with current_gateway().db.session() as session:
        account = accounts.get_account(session=session, number=number)
        device = session.get(Device, account.device_id)
        divider = device.time_divider if device else 1
        found = list_tokens(
            session=session,
            device_id=account.device_id,
            account_id=account.id,
            limit=limit,
            cursor=cursor,
        )
    rows = [token_dict(t, divider) for t in found.items]
    lines = table(
        ["COUNT", "ISSUED", "CODE", "TYPE", "GIVES", "BY", "REASON"],
        [
            (
                r["count"],
                r["created_at"],
                r["formatted"],
                r["type"],
                _gives(r),
                r["created_by"],
                short(r["reason"], 40),
            )
            for r in rows
        ],
    )
    if as_json:
        emit(True, {"account_number": account.number, "tokens": rows, "next": found.next})
    else:
        emit_page(False, "tokens", rows, found.next, lines, "no tokens yet")


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


commands = [tokens_group]
