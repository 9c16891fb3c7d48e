"""What the messaging tests share: their phone numbers, queueing, reading the outbox.

The provider stand-ins themselves are fixtures in tests/conftest.py (`at`, `tw`, `ib`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlmodel import Session, col, select

from paygo.gateway import Gateway
from paygo.messaging.outbox import queue_message
from paygo.messaging.sending import send_committed, sweep
from paygo.models import OutboundMessage, utcnow

#: A Kenyan and a Tanzanian customer (routes can send each through its own provider).
KE = "+254711000001"
TZ = "+255754000002"


def gateway_of(app: Flask) -> Gateway:
    """The app's gateway."""
    gateway: Gateway = app.extensions["paygo"]
    return gateway


def queue(gateway: Gateway, *bodies: str, to: str = KE) -> list[int]:
    """Write messages to the outbox in one transaction, then send them as writers do."""
    with gateway.db.transaction() as session:
        ids = [write(session, to, b).id for b in bodies]
    written = [i for i in ids if i is not None]
    send_committed(gateway, written)
    return written


def write(session: Session, to: str, body: str, **fields: Any) -> OutboundMessage:
    """Write one message in the caller's transaction (nothing is sent)."""
    message = queue_message(session=session, recipient=to, body=body, **fields)
    assert message is not None
    return message


def outbox(gateway: Gateway) -> list[OutboundMessage]:
    """Every outbox row, oldest first."""
    with gateway.db.session() as session:
        return list(session.exec(select(OutboundMessage).order_by(col(OutboundMessage.id))))


def row(gateway: Gateway, message_id: int) -> OutboundMessage:
    """One outbox row as it is now."""
    with gateway.db.session() as session:
        found = session.get(OutboundMessage, message_id)
    assert found is not None
    return found


def sweep_until(check: Callable[[], bool], gateway: Gateway, *, sweeps: int = 20) -> None:
    """Sweep as the schedule would, each sweep a minute after the last, until `check`
    holds: past every backoff and lease the tests' settings give, whatever the speed of
    the machine."""
    moment = utcnow()
    for _ in range(sweeps):
        if check():
            return
        moment += timedelta(minutes=1)
        sweep(gateway, now=moment)
    assert check(), f"not done after {sweeps} sweeps"


def send(app: Flask, body: str = "token", to: str = KE) -> OutboundMessage:
    """Queue one message and return its row after the dispatcher had its go."""
    gateway = gateway_of(app)
    (message_id,) = queue(gateway, body, to=to)
    return row(gateway, message_id)
