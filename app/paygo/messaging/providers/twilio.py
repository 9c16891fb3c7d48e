"""Twilio Programmable Messaging: sending through the `twilio` SDK, signed inbound
messages answered with TwiML, and signed status callbacks.

Each message carries a status callback URL under PUBLIC_BASE_URL with our outbox id in
it (`/sms/twilio/status?m=17`), so even a message whose SID we never recorded is matched
when Twilio reports on it. Twilio can list the messages sent to a number, so a send whose
outcome is unknown is looked up before anything is sent again. Every web hook is checked
against X-Twilio-Signature, computed over the public URL Twilio called: behind a TLS
proxy Flask sees http://, so the URL is rebuilt from PUBLIC_BASE_URL.

Point the number's (or messaging service's) inbound web hook at PUBLIC_BASE_URL/sms/twilio.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from paygo.errors import ConfigurationError, Forbidden, InvalidInput, NotFound
from paygo.messaging.providers import fields
from paygo.messaging.providers.base import (
    Accepted,
    Answer,
    Callback,
    InboundSms,
    OutcomeUnknown,
    Recorded,
    Reply,
    SendRefused,
    SmsProvider,
    StatusReport,
    transport_error,
)
from paygo.models import MessageStatus

if TYPE_CHECKING:
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
#: Statuses a callback may carry (inbound ones included: they change nothing).
CALLBACK_STATUSES = frozenset({*STATUSES, "receiving", "received"})
#: Authentication and rate limits: fixing the account or waiting helps, so retry.
RETRYABLE_HTTP = {401, 403, 408, 429}
#: Clock skew allowed when matching a listed message to one of ours.
LOOKUP_SLACK = timedelta(minutes=2)
_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")


class Twilio(SmsProvider):
    """Send through Twilio from a number or a messaging service."""

    name = NAME
    authoritative_lookup = True
    report_route = "status"
    required = (
        ("TWILIO_ACCOUNT_SID", "twilio_account_sid"),
        ("TWILIO_AUTH_TOKEN", "twilio_auth_token"),
    )
    replies_inline = True  # the TwiML answer is the reply: Twilio sends it

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.from_ = settings.twilio_from or None
        self.service_sid = settings.twilio_messaging_service_sid or None
        self.callback_base = settings.public_base_url.rstrip("/") + "/sms/twilio/status"

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        """Also refuse a Twilio with nothing to send from."""
        super().check_settings(settings)
        if not (settings.twilio_from or settings.twilio_messaging_service_sid):
            raise ConfigurationError(
                "SMS provider twilio needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID",
                setting="TWILIO_FROM",
            )

    @cached_property
    def client(self) -> Client:
        """The SDK's client, made on first use."""
        settings = self.settings
        if not settings.twilio_account_sid or not settings.twilio_auth_token:
            raise SendRefused(
                f"{NAME} is not configured",
                permanent=False,
                reason="TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN unset",
            )
        client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=TwilioHttpClient(timeout=settings.sms_timeout_seconds),
        )
        if settings.twilio_api_base_url:
            client.api.base_url = settings.twilio_api_base_url.rstrip("/")
        return client

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

    def verify(self, callback: Callback) -> None:
        """Check X-Twilio-Signature over the public URL and the form."""
        token = self.settings.twilio_auth_token
        if not token and callback.event:
            raise NotFound("Twilio is not configured")
        signature = callback.headers.get("x-twilio-signature", "")  # None makes twilio raise
        if not token or not RequestValidator(token).validate(
            callback.url, callback.form, signature
        ):
            raise Forbidden("missing or wrong X-Twilio-Signature")

    def parse_inbound(self, callback: Callback) -> Sequence[InboundSms]:
        """Read Twilio's inbound form post (From, Body, MessageSid, ...)."""
        form = callback.form
        phone = fields.phone(form, "From", self.settings.default_country)
        return [InboundSms(phone, fields.text(form, "Body"), fields.required(form, "MessageSid"))]

    def parse_reports(self, callback: Callback) -> Sequence[StatusReport]:
        """Read a status callback; `m` in its URL is our outbox id."""
        return [parse_status(callback.form, callback.args.get("m"))]

    def inbound_reply(self, answers: Sequence[Answer]) -> Reply:
        """Answer with TwiML: Twilio sends the reply (once: a replay gets an empty one)."""
        twiml = MessagingResponse()
        for answer in answers:
            if not answer.repeated:
                twiml.message(answer.text)
        return Reply(200, str(twiml), "application/xml")

    def report_reply(self, recorded: Sequence[Recorded]) -> Reply:
        """Twilio wants no body."""
        return Reply(204)


def parse_status(form: Any, message_hint: str | None) -> StatusReport:
    """Read a Twilio status callback; `message_hint` is our id from the callback URL."""
    sid = fields.required(form, "MessageSid", 64)
    if not _SID.fullmatch(sid):
        raise InvalidInput("MessageSid is not a Twilio message SID", field="MessageSid")
    status = fields.required(form, "MessageStatus", 40).lower()
    if status not in CALLBACK_STATUSES:
        raise InvalidInput(f"unknown MessageStatus {status[:40]!r}", field="MessageStatus")
    error_code = fields.field(form, "ErrorCode", limit=10)
    if error_code is not None and not error_code.isdigit():
        raise InvalidInput("ErrorCode must be a number", field="ErrorCode")
    hint = None
    if message_hint is not None:
        if not message_hint.isdigit() or len(message_hint) > 18:
            raise InvalidInput("m must be a message id", field="m")
        hint = int(message_hint)
    ours, reason = map_status(status, error_code)
    return StatusReport(NAME, sid, ours, reason, message_id=hint)


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
