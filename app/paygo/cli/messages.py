"""`paygo messages`: the outbox, its dead letters, and the sweep for cron."""

from __future__ import annotations

import click
from sqlmodel import col, select

from paygo import audit
from paygo.cli.context import current_gateway
from paygo.cli.output import emit, fail, handles_errors, json_option
from paygo.errors import NotFound
from paygo.messaging import jobs, outbox, reports
from paygo.messaging.sending import send_committed
from paygo.models import MessageStatus, OutboundMessage, row_id, utcnow
from paygo.phones import try_normalise


def message_dict(message: OutboundMessage) -> dict[str, object]:
    return message.model_dump()


def _line(row: dict[str, object]) -> str:
    reason = f" ({row['status_reason']})" if row.get("status_reason") else ""
    return f"#{row['id']} {row['recipient']} [{row['status']}]{reason} {row['body']}"


@click.group("messages")
def messages_group() -> None:
    """Inspect and operate the outbound messages."""


@messages_group.command("list")
@click.option("--to", "to", default=None, help="Only messages to this phone.")
@click.option("--status", type=click.Choice([s.value for s in MessageStatus]), default=None)
@click.option("--limit", default=50, show_default=True)
@json_option
def list_(to: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List the newest outbound messages."""
    gateway = current_gateway()
    with gateway.db.session() as session:
        query = select(OutboundMessage).order_by(col(OutboundMessage.id).desc()).limit(limit)
        if to:
            query = query.where(
                OutboundMessage.recipient
                == (try_normalise(to, gateway.settings.default_country) or to)
            )
        if status:
            query = query.where(OutboundMessage.status == status)
        rows = [message_dict(m) for m in session.exec(query)]
    emit(as_json, {"messages": rows}, *(_line(r) for r in rows))


@messages_group.command("failed")
@click.option("--limit", default=100, show_default=True)
@json_option
def failed(limit: int, as_json: bool) -> None:
    """List the dead letters: messages that gave up, with the reason."""
    with current_gateway().db.session() as session:
        rows = [message_dict(m) for m in outbox.dead_letters(session=session, limit=limit)]
    lines = [_line(r) for r in rows] or ["no failed messages"]
    emit(as_json, {"messages": rows}, *lines)


@messages_group.command("retry")
@click.argument("message_id", type=int, required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every failed message.")
@json_option
@handles_errors
def retry(message_id: int | None, retry_all: bool, as_json: bool) -> None:
    """Send a failed (or undeliverable) message again: `retry ID` or `retry --all`."""
    if (message_id is None) == (not retry_all):
        fail("give one message ID or --all")
    gateway, now = current_gateway(), utcnow()
    with gateway.db.transaction() as session:
        if retry_all:
            targets = outbox.dead_letters(session=session, limit=10_000)
        else:
            found = session.get(OutboundMessage, message_id)
            if found is None:
                raise NotFound(f"no message #{message_id}")
            if found.status not in outbox.RETRYABLE:
                fail(
                    f"message #{message_id} is {found.status}; only failed or "
                    "undeliverable messages are retried"
                )
            targets = [found]
        for message in targets:
            reason = f"retried by operator (was: {message.status_reason or message.status})"
            outbox.requeue(session=session, message=message, now=now, reason=reason)
            audit.record(
                session=session,
                actor="cli",
                action="message.retry",
                target_type="message",
                target_id=message.id,
            )
        ids = [row_id(m.id) for m in targets]
    send_committed(gateway, ids)  # a job each, or sent inline
    emit(
        as_json,
        {"retried": ids},
        f"queued {len(ids)} message(s) again: " + (", ".join(f"#{i}" for i in ids) or "none"),
    )


@messages_group.command("sweep")
@json_option
def sweep(as_json: bool) -> None:
    """Send (or enqueue) every due message and reconcile stuck ones; for cron."""
    counts = jobs.sweep(current_gateway())
    emit(as_json, counts, f"due: {counts['due']}, reconciling: {counts['reconciling']}")


@messages_group.command("reconcile")
@json_option
def reconcile(as_json: bool) -> None:
    """Chase delivery reports that never came (daily), then sweep."""
    gateway = current_gateway()
    counts = reports.chase(gateway)
    counts.update(jobs.sweep(gateway))
    emit(as_json, counts, *(f"{k}: {v}" for k, v in sorted(counts.items())))


commands = [messages_group]
