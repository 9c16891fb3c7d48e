"""Delivery reports: record what providers report, and chase the reports that never came.

Each provider reads its own reports (paygo.messaging.providers); paygo.web.sms serves them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import col, select

from paygo.gateway import Gateway
from paygo.messaging import dispatcher
from paygo.messaging.providers import StatusReport
from paygo.models import MessageStatus, OutboundMessage, utcnow

log = logging.getLogger(__name__)

#: A report not in by then is chased (Twilio) or noted (providers with no lookup).
CHASE_AFTER = timedelta(hours=1)
CHASE_WINDOW = timedelta(days=7)
NO_REPORT = "no delivery report"


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
                report = gateway.sms.get(provider_name).fetch_status(provider_id)
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
