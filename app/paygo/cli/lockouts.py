"""`paygo lockouts`: phones locked out of account look-ups, and letting one try again."""

from __future__ import annotations

from dataclasses import asdict

import click

from paygo import lockouts
from paygo.cli.context import current_gateway
from paygo.cli.output import (
    emit,
    emit_page,
    handles_errors,
    json_option,
    page_options,
    table,
    utc_option,
)
from paygo.models import utcnow


@click.group("lockouts")
def lockouts_group() -> None:
    """Phones locked out of account look-ups, and clearing them."""


@lockouts_group.command("list")
@page_options
@utc_option
@json_option
@handles_errors
def list_(limit: int, cursor: str | None, as_json: bool) -> None:
    """List the phones locked now (too many wrong account numbers), by number."""
    gateway = current_gateway()
    lockout = lockouts.lockout_for(settings=gateway.settings, backplane=gateway.backplane)
    found = lockouts.list_locked(lockout=lockout, now=utcnow(), limit=limit, cursor=cursor)
    lines = table(
        ["PHONE", "WRONG NUMBERS", "LAST", "LOCKED UNTIL"],
        [(x.phone, x.failures, x.last_at, x.until) for x in found.items],
    )
    rows = [asdict(x) for x in found.items]
    emit_page(as_json, "lockouts", rows, found.next, lines, "no phone is locked out")


@lockouts_group.command("clear")
@click.argument("phone")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--actor", default="cli", show_default=True)
@json_option
@handles_errors
def clear(phone: str, reason: str, actor: str, as_json: bool) -> None:
    """Let PHONE try account numbers again."""
    gateway = current_gateway()
    lockout = lockouts.lockout_for(settings=gateway.settings, backplane=gateway.backplane)
    with gateway.db.transaction() as session:
        forgotten = lockouts.clear_lockout(
            session=session,
            lockout=lockout,
            phone=phone,
            actor=actor,
            reason=reason,
            default_country=gateway.settings.default_country,
            now=utcnow(),
        )
    emit(
        as_json,
        {"phone": phone, "forgotten": forgotten},
        f"{phone} may try account numbers again ({forgotten} wrong ones forgotten)",
    )
