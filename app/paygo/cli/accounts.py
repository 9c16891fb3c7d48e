"""`paygo accounts`: find, open and show customer accounts."""

from __future__ import annotations

from typing import Any

import click

from paygo import accounts, plans, search
from paygo.cli import views
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
from paygo.errors import InvalidInput
from paygo.models import AccountStatus, utcnow
from paygo.money import format_minor
from paygo.pages import Page
from paygo.tokens.codec import format_code


@click.group("accounts")
def accounts_group() -> None:
    """Find, open and show accounts."""


@accounts_group.command("create")
@click.option("--name", required=True)
@click.option("--phone", required=True)
@click.option("--device", "serial", required=True, help="Serial number of a device in stock.")
@click.option("--plan", "plan_ref", required=True, help="The plan's id or name (any case).")
@click.option("--language", type=click.Choice(accounts.LANGUAGES), default="en", show_default=True)
@json_option
@handles_errors
def create(name: str, phone: str, serial: str, plan_ref: str, language: str, as_json: bool) -> None:
    """Open an account; prints the account number last."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        plan = plans.find_plan(session=session, ref=plan_ref)
        account = accounts.create_account(
            session=session,
            name=name,
            phone=phone,
            serial=serial,
            plan=plan,
            language=language,
            default_country=gateway.settings.default_country,
            timezone=gateway.settings.default_timezone,
        )
        number = account.number
    emit(as_json, {"account_number": number}, f"account for {name} on {serial}:", number)


def _row(row: search.AccountRow) -> dict[str, Any]:
    return {
        "account_number": row.number,
        "status": row.status,
        "customer": row.customer,
        "phone": row.phone,
        "plan": row.plan,
        "device": row.device,
        "credit_until": row.credit_until,
        "total_paid": row.total_paid,
        "currency": row.currency,
    }


def _emit_rows(page: Page[search.AccountRow], as_json: bool, empty: str) -> None:
    lines = table(
        ["ACCOUNT", "STATUS", "CUSTOMER", "PHONE", "PLAN", "DEVICE", "CREDIT UNTIL", "PAID"],
        [
            (
                r.number,
                r.status,
                r.customer,
                r.phone,
                r.plan,
                r.device,
                r.credit_until,
                format_minor(r.total_paid, r.currency),
            )
            for r in page.items
        ],
    )
    emit_page(as_json, "accounts", [_row(r) for r in page.items], page.next, lines, empty)


@accounts_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in AccountStatus]), default=None)
@click.option("--plan", "plan_ref", default=None, help="The plan's id or name (any case).")
@click.option(
    "--late-days",
    type=click.IntRange(min=0),
    default=None,
    help="Only active accounts whose credit ran out at least N days ago.",
)
@page_options
@utc_option
@json_option
@handles_errors
def list_(
    status: str | None,
    plan_ref: str | None,
    late_days: int | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List accounts, newest first."""
    with current_gateway().db.session() as session:
        plan = plans.find_plan(session=session, ref=plan_ref) if plan_ref else None
        found = search.list_accounts(
            session=session,
            now=utcnow(),
            status=status,
            plan_id=plan.id if plan else None,
            late_days=late_days,
            limit=limit,
            cursor=cursor,
        )
        _emit_rows(found, as_json, "no accounts")


@accounts_group.command("search")
@click.argument("text", nargs=-1, required=True)
@page_options
@utc_option
@json_option
@handles_errors
def search_(text: tuple[str, ...], limit: int, cursor: str | None, as_json: bool) -> None:
    """Find accounts by name, phone (any local form), account number or device serial."""
    gateway = current_gateway()
    with gateway.db.session() as session:
        found = search.search_accounts(
            session=session,
            text=" ".join(text),
            default_country=gateway.settings.default_country,
            limit=limit,
            cursor=cursor,
        )
        _emit_rows(found, as_json, f"no account matches {' '.join(text)!r}")


@accounts_group.command("show")
@click.argument("number")
@click.option("--recent", type=click.IntRange(1, 50), default=5, show_default=True)
@utc_option
@json_option
@handles_errors
def show(number: str, recent: int, as_json: bool) -> None:
    """Show an account: its customer, credit state, and last payments, codes, messages and
    tickets."""
    gateway = current_gateway()
    with gateway.db.session() as session:
        account = accounts.get_account(session=session, number=number)
        view = views.account_view(
            session=session,
            account=account,
            now=utcnow(),
            drift_warning=gateway.settings.token_drift_warning,
        )
        activity = search.recent_activity(session=session, account=account, limit=recent)
    recent_data = _activity(activity, view["currency"])
    emit(as_json, view | recent_data, *views.describe(view), *_activity_lines(recent_data))


def _activity(activity: search.Activity, currency: str) -> dict[str, list[dict[str, Any]]]:
    return {
        "payments": [p.model_dump(exclude={"raw"}) for p in activity.payments],
        "tokens": [
            {
                "count": t.count,
                "type": t.type,
                "formatted": format_code(t.code),
                "days": t.days,
                "reason": t.reason,
                "created_at": t.created_at,
                "created_by": t.created_by,
            }
            for t in activity.tokens
        ],
        "messages": [m.model_dump() for m in activity.messages],
        "tickets": [t.model_dump() for t in activity.tickets],
    }


def _activity_lines(recent: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines: list[str] = []

    def section(title: str, headers: list[str], rows: list[tuple[object, ...]]) -> None:
        lines.extend(["", f"last {title}:"])
        lines.extend(table(headers, rows) if rows else ["  none"])

    section(
        "payments",
        ["ID", "RECEIVED", "PROVIDER", "AMOUNT", "STATUS", "REASON"],
        [
            (
                p["id"],
                p["received_at"],
                p["provider"],
                _money(p["amount"], p["currency"]),
                p["status"],
                p["status_reason"],
            )
            for p in recent["payments"]
        ],
    )
    section(
        "codes",
        ["COUNT", "ISSUED", "CODE", "TYPE", "DAYS", "REASON"],
        [
            (t["count"], t["created_at"], t["formatted"], t["type"], t["days"], t["reason"])
            for t in recent["tokens"]
        ],
    )
    section(
        "messages",
        ["ID", "WRITTEN", "STATUS", "TEXT"],
        [(m["id"], m["created_at"], m["status"], short(m["body"])) for m in recent["messages"]],
    )
    section(
        "tickets",
        ["ID", "OPENED", "STATUS", "ASSIGNED TO", "PROBLEM"],
        [
            (t["id"], t["created_at"], t["status"], t["assigned_to"], short(t["body"]))
            for t in recent["tickets"]
        ],
    )
    return lines


def _money(minor: int, currency: str) -> str:
    try:
        return format_minor(minor, currency)
    except InvalidInput:  # a rejected payment may carry a currency we do not know
        return f"{minor} {currency}"
