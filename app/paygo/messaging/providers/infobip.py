"""Infobip SMS through its JSON HTTP API, with a thin `requests` client.

Infobip's official Python package (infobip-api-python-client) is maintained, but it is a
generated client for every channel (6 MB), built on urllib3 and strict pydantic models:
our three calls and two web hooks are a page of code, and `requests` gives the same
connect/read timeouts and the same transport error classification as the others.

- Send: POST {INFOBIP_BASE_URL}/sms/3/messages with `Authorization: App <key>`. We set
  each message's `messageId` ourselves (`paygo-<outbox id>-<digest of number and text>`),
  so a send whose answer we lost is found by that id in the message logs
  (GET /sms/3/logs?messageId=...), and its delivery reports name our outbox row.
- Delivery reports and inbound messages are pushed as JSON `results[]`. Infobip does not
  sign web hooks: they are served under a secret path segment,
  /sms/infobip/<INFOBIP_CALLBACK_TOKEN> (inbound) and .../delivery (reports); without the
  token both answer 404 and no report URL is given to Infobip.
- The logs keep 48 hours and may trail the send: a miss is trusted only after the
  reconciliation window (SMS_RECONCILE_AFTER_SECONDS), as for Africa's Talking.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from paygo.errors import ConfigurationError, InvalidInput
from paygo.messaging.providers import fields
from paygo.messaging.providers.base import (
    Accepted,
    Callback,
    InboundSms,
    OutcomeUnknown,
    SendRefused,
    SmsProvider,
    StatusReport,
    transport_error,
)
from paygo.models import MessageStatus

if TYPE_CHECKING:
    from paygo.settings import Settings

NAME = "infobip"
SEND_PATH = "/sms/3/messages"
LOGS_PATH = "/sms/3/logs"
#: Status groups (groupId -> groupName) of Infobip's status objects.
GROUPS = {1: "PENDING", 2: "UNDELIVERABLE", 3: "DELIVERED", 4: "EXPIRED", 5: "REJECTED"}
#: Groups onto our states; DELIVERED_TO_OPERATOR (id 2) is not yet the handset.
STATES = {
    "ACCEPTED": MessageStatus.SENT,
    "PENDING": MessageStatus.SENT,
    "DELIVERED": MessageStatus.DELIVERED,
    "UNDELIVERABLE": MessageStatus.UNDELIVERABLE,
    "EXPIRED": MessageStatus.UNDELIVERABLE,
    "REJECTED": MessageStatus.FAILED,
}
DELIVERED_TO_OPERATOR = 2
#: Rejections an operator or time can cure (credit, routes, flooding, system error).
TRANSIENT_REJECTIONS = {12, 17, 19, 20, 21}
#: The id was taken before: an earlier attempt may have gone out, so the logs decide.
DUPLICATE_MESSAGE_ID = 23
#: Authentication, permissions and rate limits: fixing the account or waiting helps.
RETRYABLE_HTTP = {401, 403, 408, 429}
_OUR_ID = re.compile(r"paygo-(?P<id>[0-9]{1,18})-[0-9a-f]{12}")
T = TypeVar("T")


class Infobip(SmsProvider):
    """Send through Infobip from INFOBIP_SENDER (or the account's default sender)."""

    name = NAME
    report_route = "delivery"
    token_setting = "infobip_callback_token"
    required = (("INFOBIP_BASE_URL", "infobip_base_url"), ("INFOBIP_API_KEY", "infobip_api_key"))

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        read = settings.sms_timeout_seconds
        self.timeout = (min(3.05, read), read)

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        """Also refuse a base URL that is not one."""
        super().check_settings(settings)
        if not re.fullmatch(
            r"(https?://)?[A-Za-z0-9.\-]+(:[0-9]+)?/?", settings.infobip_base_url or ""
        ):
            raise ConfigurationError(
                "INFOBIP_BASE_URL must be your account's base URL, such as "
                "https://xxxxx.api.infobip.com",
                setting="INFOBIP_BASE_URL",
            )

    @cached_property
    def http(self) -> requests.Session:
        """A kept-alive session carrying the API key, made on first use."""
        if not self.settings.infobip_api_key:
            raise SendRefused(f"{NAME} is not configured", permanent=False, reason="no API key")
        session = requests.Session()
        session.headers.update(
            {"Authorization": f"App {self.settings.infobip_api_key}", "Accept": "application/json"}
        )
        return session

    @property
    def base_url(self) -> str:
        """The account's base URL; Infobip shows it without a scheme."""
        base = (self.settings.infobip_base_url or "").rstrip("/")
        return base if base.startswith(("http://", "https://")) else f"https://{base}"

    # -- sending ---------------------------------------------------------------------------
    def send(self, *, message_id: int, recipient: str, body: str) -> Accepted:
        """Send one SMS under our own message id; map Infobip's status onto our outcome."""
        ours = our_message_id(message_id, recipient, body)
        message: dict[str, Any] = {
            "destinations": [{"to": recipient.lstrip("+"), "messageId": ours}],
            "content": {"text": body},
        }
        if self.settings.infobip_sender:
            message["sender"] = self.settings.infobip_sender
        if self.settings.infobip_callback_token:
            message["webhooks"] = {
                "delivery": {"url": self._report_url(self.settings.infobip_callback_token)},
                "contentType": "application/json",
            }
        reply = self._call("POST", SEND_PATH, json={"messages": [message]})
        return send_outcome(reply, ours)

    def lookup(
        self, *, message_id: int, recipient: str, body: str, since: datetime
    ) -> Accepted | None:
        """Find the message in the logs by the id we gave it (same number)."""
        ours = our_message_id(message_id, recipient, body)
        for entry in self._logs(ours):
            if str(entry.get("destination") or "").lstrip("+") == recipient.lstrip("+"):
                status, reason = map_status(entry.get("status"), entry.get("error"))
                return Accepted(ours, status, reason)
        return None

    def fetch_status(self, provider_message_id: str) -> StatusReport | None:
        """Read one message's state from the logs (kept 48 hours)."""
        for entry in self._logs(provider_message_id):
            status, reason = map_status(entry.get("status"), entry.get("error"))
            return StatusReport(
                NAME, provider_message_id, status, reason, message_id=our_id_in(provider_message_id)
            )
        return None

    def _logs(self, provider_message_id: str) -> list[dict[str, Any]]:
        reply = self._call("GET", LOGS_PATH, params={"messageId": provider_message_id})
        results = reply.get("results")
        if not isinstance(results, list):
            raise OutcomeUnknown(f"{NAME} logs have no results", reason=f"{NAME} unreadable logs")
        return [
            r for r in results if isinstance(r, dict) and r.get("messageId") == provider_message_id
        ]

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(
                method, self.base_url + path, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise transport_error(NAME, exc) from exc
        if response.status_code >= 400:
            raise http_error(response)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OutcomeUnknown(
                f"{NAME} answered {response.status_code} with a body that is not a JSON object",
                reason=f"{NAME} unreadable reply",
            )
        return data

    def _report_url(self, token: str) -> str:
        return f"{self.settings.public_base_url.rstrip('/')}/sms/{NAME}/{token}/{self.report_route}"

    # -- web hooks -------------------------------------------------------------------------
    def parse_inbound(self, callback: Callback) -> Sequence[InboundSms]:
        """Read pushed inbound messages: results[] of messageId, from, text, ..."""
        country = self.settings.default_country
        return _each(
            fields.objects(fields.json_object(callback.body), "results"),
            lambda item: InboundSms(
                fields.phone(item, "from", country),
                fields.text(item, "text"),
                fields.token(item, "messageId"),
            ),
        )

    def parse_reports(self, callback: Callback) -> Sequence[StatusReport]:
        """Read pushed delivery reports: results[] of messageId, status, error, ..."""
        return _each(fields.objects(fields.json_object(callback.body), "results"), _report)


def _report(item: Mapping[str, Any]) -> StatusReport:
    provider_id = fields.token(item, "messageId")
    if not isinstance(item.get("status"), dict):
        raise InvalidInput("status must be an object", field="status")
    if _group(item["status"]) is None:
        raise InvalidInput("status has no known groupName or groupId", field="status")
    if item.get("error") is not None and not isinstance(item["error"], dict):
        raise InvalidInput("error must be an object", field="error")
    status, reason = map_status(item["status"], item.get("error"))
    return StatusReport(NAME, provider_id, status, reason, message_id=our_id_in(provider_id))


def _each(items: list[dict[str, Any]], parse: Callable[[dict[str, Any]], T]) -> list[T]:
    """Parse every entry of a batch, or refuse the whole batch naming the bad entry."""
    parsed = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse(item))
        except InvalidInput as exc:
            # A bad number is the sender's (`from`); phones.normalise names no field.
            name = exc.context.get("field") or ("from" if "phone" in exc.context else "")
            where = f"results[{index}].{name}"
            raise InvalidInput(f"{where}: {exc.message}", field=where) from exc
    return parsed


def our_message_id(message_id: int, recipient: str, body: str) -> str:
    """The id we give a message: our outbox id, and a digest so no other text can match."""
    digest = hashlib.sha256(f"{recipient}\n{body}".encode()).hexdigest()[:12]
    return f"paygo-{message_id}-{digest}"


def our_id_in(provider_message_id: str) -> int | None:
    """Our outbox id inside an id we gave; None for ids Infobip made."""
    found = _OUR_ID.fullmatch(provider_message_id)
    return int(found.group("id")) if found else None


def send_outcome(reply: Mapping[str, Any], ours: str) -> Accepted:
    """Read the send reply's status for our message."""
    messages = reply.get("messages")
    entries = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
    entry = next(
        (m for m in entries if m.get("messageId") == ours), entries[0] if entries else None
    )
    if entry is None or not isinstance(entry.get("status"), dict):
        raise OutcomeUnknown(
            f"{NAME} reply has no message status", reason=f"{NAME} unreadable reply"
        )
    status = entry["status"]
    group, code = _group(status), status.get("id")
    reason = f"{NAME} {str(status.get('name') or group)[:60]}"
    if group in ("ACCEPTED", "PENDING", "DELIVERED"):
        return Accepted(ours, map_status(status, None)[0], reason)
    if group == "REJECTED" and code == DUPLICATE_MESSAGE_ID:
        raise OutcomeUnknown(f"{NAME} already has this message id", reason=reason)
    if group is None:
        raise OutcomeUnknown(f"{NAME} answered an unknown status", reason=reason)
    permanent = not (group == "REJECTED" and code in TRANSIENT_REJECTIONS)
    raise SendRefused(f"{NAME} did not send: {reason}", permanent=permanent, reason=reason)


def map_status(status: Any, error: Any) -> tuple[MessageStatus, str]:
    """Map an Infobip status object (and error object) onto our state and a reason."""
    status = status if isinstance(status, dict) else {}
    group = _group(status) or "PENDING"
    ours = STATES[group]
    if group == "DELIVERED" and status.get("id") == DELIVERED_TO_OPERATOR:
        ours = MessageStatus.SENT
    reason = f"{NAME} {str(status.get('name') or group)[:60]}"
    if isinstance(error, dict) and error.get("name") not in (None, "NO_ERROR"):
        reason += f" {str(error['name'])[:60]}"
    return ours, reason


def _group(status: Mapping[str, Any]) -> str | None:
    name = status.get("groupName")
    if isinstance(name, str) and name in STATES:
        return name
    group_id = status.get("groupId")
    if isinstance(group_id, bool) or not isinstance(group_id, int):
        return None
    return GROUPS.get(group_id)


def http_error(response: requests.Response) -> SendRefused | OutcomeUnknown:
    """Classify an error reply: 5xx may come after the message was taken, 4xx did not."""
    reason = f"{NAME} {response.status_code} {_error_text(response)}".strip()
    if response.status_code >= 500:
        return OutcomeUnknown(f"{NAME} server error {response.status_code}", reason=reason)
    return SendRefused(
        f"{NAME} refused: {reason}",
        permanent=response.status_code not in RETRYABLE_HTTP,
        reason=reason,
    )


def _error_text(response: requests.Response) -> str:
    """The error's text, from either of Infobip's error bodies."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:120]
    if not isinstance(data, dict):
        return ""
    request_error = data.get("requestError")
    service = request_error.get("serviceException") if isinstance(request_error, dict) else None
    if isinstance(service, dict):
        return f"{service.get('messageId') or ''} {service.get('text') or ''}".strip()[:120]
    return f"{data.get('errorCode') or ''} {data.get('description') or ''}".strip()[:120]
