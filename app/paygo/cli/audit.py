"""`paygo audit`: the log of what operators (and the system) did, and why."""

from __future__ import annotations

import json
from datetime import datetime

import click

from paygo import audit
from paygo.cli.context import current_gateway
from paygo.cli.output import (
    emit_page,
    handles_errors,
    json_option,
    local,
    page_options,
    since_option,
    table,
    utc_option,
)


@click.group("audit")
def audit_group() -> None:
    """Read the audit log of operator actions."""


@audit_group.command("list")
@click.option("--actor", default=None, help="Only what this actor did.")
@click.option("--target", default=None, help="An id (10000004) or type:id (plan:3).")
@since_option
@page_options
@utc_option
@json_option
@handles_errors
def list_(
    actor: str | None,
    target: str | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List audit lines, newest first."""
    with current_gateway().db.session() as session:
        found = audit.list_entries(
            session=session,
            actor=actor,
            target=target,
            since=local(since),
            limit=limit,
            cursor=cursor,
        )
    rows = [
        {**e.model_dump(exclude={"detail"}), "detail": json.loads(e.detail)} for e in found.items
    ]
    lines = table(
        ["ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL"],
        [
            (
                r["id"],
                r["at"],
                r["actor"],
                r["action"],
                f"{r['target_type']}:{r['target_id']}" if r["target_type"] else r["target_id"],
                _detail(r["detail"]),
            )
            for r in rows
        ],
    )
    emit_page(as_json, "entries", rows, found.next, lines, "no audit lines")


def _detail(detail: dict[str, object]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in detail.items())
    return shown if len(shown) <= 80 else shown[:77] + "..."
