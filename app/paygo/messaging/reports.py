"""Delivery reports: read the providers' callbacks, and chase the reports that never came."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlmodel import col, select

from paygo.errors import InvalidInput
from paygo.extensions import Gateway
from paygo.messaging import dispatcher
from paygo.messaging.providers import StatusReport
from paygo.messaging.providers.twilio import map_status
from paygo.models import MessageStatus, OutboundMessage, utcnow
from paygo.phones import try_normalise

log = logging.getLogger(__name__)

#: Africa's Talking delivery report statuses onto ours.
AT_STATUSES: dict[str, MessageStatus] = {
    "Sent": MessageStatus.SENT,
    "Submitted": MessageStatus.SENT,
    "Buffered": MessageStatus.SENT,
    "Success": MessageStatus.DELIVERED,
    "Rejected": MessageStatus.FAILED,
    "Failed": MessageStatus.UNDELIVERABLE,
    "AbsentSubscriber": MessageStatus.UNDELIVERABLE,
    "Expired": MessageStatus.UNDELIVERABLE,
}
TWILIO_STATUSES = frozenset(
    {
        "accepted",
        "scheduled",
        "queued",
        "sending",
        "sent",
        "delivered",
        "read",
        "undelivered",
        "failed",
        "canceled",
        "partially_delivered",
        "receiving",
        "received",
    }
)
_TWILIO_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
_TOKEN = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
#: A report not in by then is chased (Twilio) or noted (providers with no lookup).
CHASE_AFTER = timedelta(hours=1)
CHASE_WINDOW = timedelta(days=7)
NO_REPORT = "no delivery report"


def _field(
    form: Mapping[str, str], name: str, *, required: bool = False, limit: int = 100
) -> str | None:
    value = (form.get(name) or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return None
    if len(value) > limit:
        raise InvalidInput(
            f"{name} is too long ({len(value)} characters, {limit} at most)", field=name
        )
    return value


def parse_at_delivery(form: Mapping[str, str], default_country: str = "KE") -> StatusReport:
    """Read an Africa's Talking delivery report (id, status, phoneNumber, failureReason...)."""
    message_id = _field(form, "id", required=True)
    if message_id is None or not _TOKEN.fullmatch(message_id):
        raise InvalidInput("id has characters a message id never has", field="id")
    status = _field(form, "status", required=True, limit=40) or ""
    if status not in AT_STATUSES:
        raise InvalidInput(f"unknown status {status[:40]!r}", field="status")
    phone_raw = _field(form, "phoneNumber", limit=40)
    phone = try_normalise(phone_raw, default_country)
    if phone_raw and phone is None:
        raise InvalidInput("phoneNumber is not a phone number", field="phoneNumber")
    retries = _field(form, "retryCount", limit=10)
    if retries is not None and not retries.isdigit():
        raise InvalidInput("retryCount must be a whole number", field="retryCount")
    failure = _field(form, "failureReason", limit=200)
    network = _field(form, "networkCode", limit=20)
    reason = " ".join(
        filter(None, ("africastalking", status, failure, f"network {network}" if network else None))
    )
    return StatusReport("africastalking", message_id, AT_STATUSES[status], reason, recipient=phone)


def parse_twilio_status(form: Mapping[str, str], message_hint: str | None) -> StatusReport:
    """Read a Twilio status callback; `message_hint` is our id from the callback URL."""
    sid = _field(form, "MessageSid", required=True, limit=64) or ""
    if not _TWILIO_SID.fullmatch(sid):
        raise InvalidInput("MessageSid is not a Twilio message SID", field="MessageSid")
    status = (_field(form, "MessageStatus", required=True, limit=40) or "").lower()
    if status not in TWILIO_STATUSES:
        raise InvalidInput(f"unknown MessageStatus {status[:40]!r}", field="MessageStatus")
    error_code = _field(form, "ErrorCode", limit=10)
    if error_code is not None and not error_code.isdigit():
        raise InvalidInput("ErrorCode must be a number", field="ErrorCode")
    hint = None
    if message_hint is not None:
        if not message_hint.isdigit() or len(message_hint) > 18:
            raise InvalidInput("m must be a message id", field="m")
        hint = int(message_hint)
    ours, reason = map_status(status, error_code)
    return StatusReport("twilio", sid, ours, reason, message_id=hint)


def record(gateway: Gateway, report: StatusReport) -> OutboundMessage | None:
    """Apply a report in its own transaction; None when it is about no message of ours."""
    with gateway.db.transaction() as session:
        return dispatcher.apply_report(session=session, report=report)


def chase(gateway: Gateway, *, now: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Settle `sent` messages whose delivery report never came: ask, or note the silence."""
    now = now or utcnow()
    counts = {"checked": 0, "updated": 0, "noted": 0, "errors": 0}
    with gateway.db.session() as session:
        stale = list(
            session.exec(
                select(
                    OutboundMessage.id,
                    OutboundMessage.provider,
                    OutboundMessage.provider_message_id,
                )
                .where(OutboundMessage.status == MessageStatus.SENT)
                .where(col(OutboundMessage.sent_at) < now - CHASE_AFTER)
                .where(col(OutboundMessage.sent_at) > now - CHASE_WINDOW)
                .order_by(col(OutboundMessage.id))
                .limit(limit)
            )
        )
    for message_id, provider_name, provider_id in stale:
        assert message_id is not None
        counts["checked"] += 1
        report = None
        if provider_name and provider_id:
            try:
                report = dispatcher.providers(gateway).get(provider_name).fetch_status(provider_id)
            except Exception as exc:  # one provider's outage must not stop the others
                log.warning("fetching status of message %s failed: %s", message_id, exc)
                counts["errors"] += 1
                continue
        key = "updated" if report is not None else "noted"
        counts[key] += _settle_stale(gateway, message_id, report, now)
    return counts


def _settle_stale(
    gateway: Gateway, message_id: int, report: StatusReport | None, now: datetime
) -> int:
    with gateway.db.transaction() as session:
        message = session.get(OutboundMessage, message_id, with_for_update=True)
        if message is None or message.status != MessageStatus.SENT:
            return 0
        if report is not None:
            before = message.status
            dispatcher.apply_report(session=session, report=report, now=now)
            return int(message.status != before)
        if (message.status_reason or "").startswith(NO_REPORT):
            return 0
        message.status_reason = f"{NO_REPORT} by {now:%Y-%m-%d}; the provider has no lookup"
        message.updated_at = now
        session.add(message)
        return 1
