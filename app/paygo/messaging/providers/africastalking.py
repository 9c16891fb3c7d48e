"""Africa's Talking SMS: sending through the `africastalking` SDK, inbound messages and
delivery reports as form posts.

Quirks handled here: the SDK parses JSON only when the content type is exactly
`application/json`, so a reply with `; charset=utf-8` comes back as a str; a non-2xx
reply raises `AfricasTalkingException` with the body only (no status code); numbers
that are not `+` E.164 raise ValueError before anything is sent. Africa's Talking has
no API to look an outbound message up: a send whose outcome is unknown is reconciled
from delivery reports (see paygo.messaging.dispatcher), which is why a report carries
the recipient's number.

Point Africa's Talking (in its dashboard) at PUBLIC_BASE_URL/sms/africastalking for
inbound messages and PUBLIC_BASE_URL/sms/africastalking/delivery for delivery reports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService

from paygo.errors import InvalidInput
from paygo.messaging.providers import fields
from paygo.messaging.providers.base import (
    Accepted,
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
from paygo.phones import try_normalise

if TYPE_CHECKING:
    from paygo.settings import Settings

NAME = "africastalking"
#: Per-recipient status codes of the send reply (AT's documented list).
ACCEPTED_CODES = {100: "Processed", 101: "Sent", 102: "Queued"}
#: Failures a retry can cure: not accepted, try again later.
TRANSIENT_CODES = {405: "InsufficientBalance", 500: "InternalServerError", 501: "GatewayError"}
#: Failures no retry can cure: straight to the dead letter.
PERMANENT_CODES = {
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    502: "RejectedByGateway",
}
#: Delivery report statuses onto ours.
STATUSES: dict[str, MessageStatus] = {
    "Sent": MessageStatus.SENT,
    "Submitted": MessageStatus.SENT,
    "Buffered": MessageStatus.SENT,
    "Success": MessageStatus.DELIVERED,
    "Rejected": MessageStatus.FAILED,
    "Failed": MessageStatus.UNDELIVERABLE,
    "AbsentSubscriber": MessageStatus.UNDELIVERABLE,
    "Expired": MessageStatus.UNDELIVERABLE,
}


class AfricasTalking(SmsProvider):
    """Send through Africa's Talking; `sandbox` as the username uses their sandbox."""

    name = NAME
    report_route = "delivery"
    required = (("AT_USERNAME", "at_username"), ("AT_API_KEY", "at_api_key"))

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sender_id = settings.at_sender_id or None
        read = settings.sms_timeout_seconds
        self.timeout = (min(3.05, read), read)

    @cached_property
    def service(self) -> SMSService:
        """The SDK's SMS service, made on first use."""
        settings = self.settings
        if not settings.at_username or not settings.at_api_key:
            raise SendRefused(
                f"{NAME} is not configured", permanent=False, reason="AT_USERNAME/AT_API_KEY unset"
            )
        service = SMSService(settings.at_username, settings.at_api_key)
        if settings.at_api_base_url:
            # The SDK builds URLs from `_baseUrl` (sandbox or production); point it elsewhere
            # for a proxy or the loopback stand-in used in tests.
            service._baseUrl = settings.at_api_base_url.rstrip("/") + "/version1"
        return service

    def send(self, *, message_id: int, recipient: str, body: str) -> Accepted:
        """Send one SMS; map AT's per-recipient status code onto our outcome."""
        try:
            reply = self.service.send(
                body, [recipient], sender_id=self.sender_id, timeout=self.timeout
            )
        except ValueError as exc:  # the SDK's own E.164 check: nothing was sent
            raise SendRefused(str(exc), permanent=True, reason=f"{NAME} invalid number") from exc
        except AfricasTalkingException as exc:
            text = str(exc).strip()[:200] or "error reply"
            raise SendRefused(
                f"{NAME} refused the request: {text}",
                permanent=False,
                reason=f"{NAME} http error: {text}",
            ) from exc
        except requests.RequestException as exc:
            raise transport_error(NAME, exc) from exc
        return parse_send_reply(reply, recipient)

    def parse_inbound(self, callback: Callback) -> Sequence[InboundSms]:
        """Read AT's inbound form post (from, text, id, ...)."""
        form = callback.form
        phone = fields.phone(form, "from", self.settings.default_country)
        return [InboundSms(phone, fields.text(form, "text"), fields.required(form, "id"))]

    def parse_reports(self, callback: Callback) -> Sequence[StatusReport]:
        """Read AT's delivery report form post."""
        return [parse_delivery(callback.form, self.settings.default_country)]

    def report_reply(self, recorded: Sequence[Recorded]) -> Reply:
        """Say which of our messages the report was about, and its state now."""
        ((_, message),) = recorded
        if message is None:
            # Not one of ours (sent from AT's dashboard, or long purged): nothing to retry.
            return Reply(200, {"status": "ignored"})
        return Reply(200, {"status": "ok", "message_id": message.id, "state": message.status})


def parse_delivery(form: Any, default_country: str = "KE") -> StatusReport:
    """Read an Africa's Talking delivery report (id, status, phoneNumber, failureReason...)."""
    message_id = fields.token(form, "id")
    status = fields.required(form, "status", 40)
    if status not in STATUSES:
        raise InvalidInput(f"unknown status {status[:40]!r}", field="status")
    phone_raw = fields.field(form, "phoneNumber", limit=40)
    phone = try_normalise(phone_raw, default_country)
    if phone_raw and phone is None:
        raise InvalidInput("phoneNumber is not a phone number", field="phoneNumber")
    retries = fields.field(form, "retryCount", limit=10)
    if retries is not None and not retries.isdigit():
        raise InvalidInput("retryCount must be a whole number", field="retryCount")
    failure = fields.field(form, "failureReason", limit=200)
    network = fields.field(form, "networkCode", limit=20)
    reason = " ".join(
        filter(None, (NAME, status, failure, f"network {network}" if network else None))
    )
    return StatusReport(NAME, message_id, STATUSES[status], reason, recipient=phone)


def parse_send_reply(reply: Any, recipient: str) -> Accepted:
    """Read the SDK's reply (a dict, or a str when the content type carried a charset)."""
    if isinstance(reply, str | bytes):
        try:
            reply = json.loads(reply)
        except ValueError:
            raise OutcomeUnknown(
                f"{NAME} answered 2xx with a body that is not JSON",
                reason=f"{NAME} unreadable reply",
            ) from None
    data = reply.get("SMSMessageData") if isinstance(reply, dict) else None
    if not isinstance(data, dict):
        raise OutcomeUnknown(
            f"{NAME} reply has no SMSMessageData", reason=f"{NAME} unreadable reply"
        )
    recipients = data.get("Recipients") or []
    entry = next(
        (r for r in recipients if isinstance(r, dict) and r.get("number") == recipient), None
    )
    if entry is None:
        entry = recipients[0] if recipients and isinstance(recipients[0], dict) else None
    if entry is None:
        # AT answers `"Recipients": []` with the reason in Message ("InvalidSenderId").
        text = str(data.get("Message") or "no recipient accepted")[:120]
        raise SendRefused(
            f"{NAME} accepted no recipient: {text}", permanent=True, reason=f"{NAME} {text}"
        )
    return _recipient_outcome(entry)


def _recipient_outcome(entry: dict[str, Any]) -> Accepted:
    try:
        code = int(entry.get("statusCode", -1))
    except (TypeError, ValueError):
        code = -1
    status = str(entry.get("status") or "")[:60]
    message_id = str(entry.get("messageId") or "")[:100] or None
    if code in ACCEPTED_CODES or (code == -1 and status == "Success"):
        if message_id is None or message_id == "None":
            raise OutcomeUnknown(
                f"{NAME} accepted without a messageId",
                reason=f"{NAME} {code} {status} without messageId",
            )
        return Accepted(message_id, MessageStatus.SENT, f"{NAME} {code} {status}".strip())
    reason = f"{NAME} {code} {status or PERMANENT_CODES.get(code) or TRANSIENT_CODES.get(code)}"
    if code in TRANSIENT_CODES:
        raise SendRefused(f"{NAME} did not send: {reason}", permanent=False, reason=reason)
    raise SendRefused(f"{NAME} refused the number: {reason}", permanent=True, reason=reason)
