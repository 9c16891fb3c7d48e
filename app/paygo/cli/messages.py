"""`paygo messages`: the outbox, its dead letters, and the sweep for cron."""

from __future__ import annotations

import click

from paygo import audit
from paygo.cli.context import current_gateway
from paygo.cli.output import (
    emit,
    emit_page,
    fail,
    handles_errors,
    json_option,
    page_options,
    short,
    table,
    utc_option,
)
from paygo.errors import NotFound
from paygo.messaging import outbox, reports
from paygo.messaging.sending import send_committed
from paygo.messaging.sending import sweep as sweep_outbox
from paygo.models import MessageStatus, OutboundMessage, row_id, utcnow
from paygo.pages import Page
from paygo.phones import try_normalise


def message_dict(message: OutboundMessage) -> dict[str, object]:
    return message.model_dump()


def _emit(found: Page[OutboundMessage], as_json: bool, empty: str) -> None:
    lines = table(
        ["ID", "WRITTEN", "TO", "KIND", "STATUS", "TRIES", "REASON", "TEXT"],
        [
            (
                m.id,
                m.created_at,
                m.recipient,
                m.kind,
                m.status,
                m.attempts,
                short(m.status_reason, 40),
                short(m.body, 60),
            )
            for m in found.items
        ],
    )
    rows = [message_dict(m) for m in found.items]
    emit_page(as_json, "messages", rows, found.next, lines, empty)


@click.group("messages")
def messages_group() -> None:
    """Inspect and operate the outbound messages."""


@messages_group.command("list")
@click.option("--to", "to", default=None, help="Only messages to this phone.")
@click.option("--status", type=click.Choice([s.value for s in MessageStatus]), default=None)
@page_options
@utc_option
@json_option
@handles_errors
def list_(
    to: str | None, status: str | None, limit: int, cursor: str | None, as_json: bool
) -> None:
    """List the outbound messages, newest first."""
    gateway = current_gateway()
    recipient = None
    if to:
        recipient = try_normalise(to, gateway.settings.default_country) or to.strip()
    with gateway.db.session() as session:
        found = outbox.list_messages(
            session=session, recipient=recipient, status=status, limit=limit, cursor=cursor
        )
    _emit(found, as_json, "no messages")


@messages_group.command("failed")
@page_options
@utc_option
@json_option
@handles_errors
def failed(limit: int, cursor: str | None, as_json: bool) -> None:
    """List the dead letters: messages that gave up, with the reason."""
    with current_gateway().db.session() as session:
        found = outbox.list_messages(
            session=session, status=MessageStatus.FAILED, limit=limit, cursor=cursor
        )
    _emit(found, as_json, "no failed messages")


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
    counts = sweep_outbox(current_gateway())
    emit(as_json, counts, f"due: {counts['due']}, reconciling: {counts['reconciling']}")


@messages_group.command("reconcile")
@json_option
def reconcile(as_json: bool) -> None:
    """Chase delivery reports that never came (daily), then sweep."""
    gateway = current_gateway()
    counts = reports.chase(gateway)
    counts.update(sweep_outbox(gateway))
    emit(as_json, counts, *(f"{k}: {v}" for k, v in sorted(counts.items())))


commands = [messages_group]
