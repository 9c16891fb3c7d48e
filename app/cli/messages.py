"""`paygo messages`: the outbox."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlmodel import col, select

from app.cli.output import emit, json_option
from app.extensions import current_gateway
from app.models import OutboundMessage
from app.phones import try_normalise


def message_dict(message: OutboundMessage) -> dict[str, object]:
    return message.model_dump()


@click.group("messages")
def messages_group() -> None:
    """Inspect outbound messages."""


@messages_group.command("list")
@click.option("--to", "to", default=None, help="Only messages to this phone.")
@click.option("--limit", default=50, show_default=True)
@json_option
@with_appcontext
def list_(to: str | None, limit: int, as_json: bool) -> None:
    """List the newest outbound messages."""
    gateway = current_gateway()
    with gateway.db.session() as session:
        query = select(OutboundMessage).order_by(col(OutboundMessage.id).desc()).limit(limit)
        if to:
            query = query.where(OutboundMessage.recipient ==
                                (try_normalise(to, gateway.settings.default_country) or to))
        rows = [message_dict(m) for m in session.exec(query)]
    emit(as_json, {"messages": rows},
         *(f"#{r['id']} {r['recipient']} [{r['status']}] {r['body']}" for r in rows))


commands = [messages_group]
