"""Twilio Programmable Messaging through the `twilio` SDK.

Each message carries a status callback URL under PUBLIC_BASE_URL with our outbox id in
it, so even a message whose SID we never recorded is matched when Twilio reports on it.
Twilio can list the messages sent to a number, so a send whose outcome is unknown is
looked up before anything is sent again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from paygo.messaging.providers.base import (
    Accepted,
    OutcomeUnknown,
    SendRefused,
    SmsProvider,
    StatusReport,
    transport_error,
)
from paygo.models import MessageStatus
from paygo.settings import Settings

NAME = "twilio"
#: Twilio's MessageStatus values onto ours.
STATUSES: dict[str, MessageStatus] = {
    "accepted": MessageStatus.SENT,
    "scheduled": MessageStatus.SENT,
    "queued": MessageStatus.SENT,
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERABLE,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
    "partially_delivered": MessageStatus.DELIVERED,
}
#: Authentication and rate limits: fixing the account or waiting helps, so retry.
RETRYABLE_HTTP = {401, 403, 408, 429}
#: Clock skew allowed when matching a listed message to one of ours.
LOOKUP_SLACK = timedelta(minutes=2)


class Twilio(SmsProvider):
    """Send through Twilio from a number or a messaging service."""

    name = NAME
    authoritative_lookup = True

    def __init__(self, settings: Settings) -> None:
        if not settings.twilio_account_sid or not settings.twilio_auth_token:
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required")
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=TwilioHttpClient(timeout=settings.sms_timeout_seconds),
        )
        if settings.twilio_api_base_url:
            self.client.api.base_url = settings.twilio_api_base_url.rstrip("/")
        self.from_ = settings.twilio_from or None
        self.service_sid = settings.twilio_messaging_service_sid or None
        self.callback_base = settings.public_base_url.rstrip("/") + "/sms/twilio/status"

    def send(self, *, message_id: int, recipient: str, body: str) -> Accepted:
        """Create the message; Twilio reports on it at our status callback."""
        try:
            created = self.client.messages.create(
                to=recipient,
                body=body,
                from_=self.from_ if not self.service_sid else None,
                messaging_service_sid=self.service_sid,
                status_callback=f"{self.callback_base}?m={message_id}",
            )
        except TwilioRestException as exc:
            raise _rest_error(exc) from exc
        except requests.RequestException as exc:
            raise transport_error(NAME, exc) from exc
        except TwilioException as exc:  # an unreadable reply: it may have been created
            raise OutcomeUnknown(f"{NAME}: {exc}", reason=f"{NAME} unreadable reply") from exc
        return _accepted(created)

    def lookup(
        self, *, message_id: int, recipient: str, body: str, since: datetime
    ) -> Accepted | None:
        """Find the message among the latest sent to `recipient` (same body, not older)."""
        try:
            listed = self.client.messages.list(to=recipient, limit=50)
        except TwilioRestException as exc:
            raise _rest_error(exc) from exc
        except requests.RequestException as exc:
            raise transport_error(NAME, exc) from exc
        for item in listed:
            created = getattr(item, "date_created", None)
            # A trial account prefixes the body: match on the end.
            if (item.body or "").endswith(body) and (
                created is None or created >= since - LOOKUP_SLACK
            ):
                return _accepted(item)
        return None

    def fetch_status(self, provider_message_id: str) -> StatusReport | None:
        """Fetch one message's state by SID."""
        try:
            item = self.client.messages(provider_message_id).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise _rest_error(exc) from exc
        except requests.RequestException as exc:
            raise transport_error(NAME, exc) from exc
        status, reason = map_status(item.status, item.error_code)
        return StatusReport(NAME, provider_message_id, status, reason)


def map_status(status: Any, error_code: Any = None) -> tuple[MessageStatus, str]:
    """Map a Twilio MessageStatus (and ErrorCode) onto our state and a reason."""
    text = str(status or "").lower()
    ours = STATUSES.get(text, MessageStatus.SENT)
    reason = f"{NAME} {text}" + (f" {error_code}" if error_code not in (None, "") else "")
    return ours, reason


def _accepted(item: Any) -> Accepted:
    # Created but already dead (a queue overflow) is kept as reported, not resent.
    status, reason = map_status(item.status, getattr(item, "error_code", None))
    return Accepted(str(item.sid), status, reason)


def _rest_error(exc: TwilioRestException) -> SendRefused | OutcomeUnknown:
    reason = f"{NAME} {exc.status} {exc.code or ''} {str(exc.msg)[:120]}".strip()
    if exc.status >= 500:
        # The request reached Twilio: it may have created the message before failing.
        return OutcomeUnknown(f"{NAME} server error {exc.status}", reason=reason)
    return SendRefused(
        f"{NAME} refused: {reason}", permanent=exc.status not in RETRYABLE_HTTP, reason=reason
    )
