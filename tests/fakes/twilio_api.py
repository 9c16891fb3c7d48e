"""A loopback stand-in for Twilio's Messages API, so the real `twilio` SDK runs.

Create (`POST .../Messages.json`), list by `To` (`GET .../Messages.json`) and fetch
(`GET .../Messages/{Sid}.json`), with HTTP basic auth and Twilio's JSON error bodies.
`status_callback` builds the signed request Twilio would post to our status URL.

    with FakeTwilio() as tw:
        app = make_app(**tw.settings())
        path, form, headers = tw.status_callback(tw.messages[0]["sid"], "delivered")
        client.post(path, data=form, headers=headers)
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

from tests.fakes.http import LoopbackServer, Reply, Request

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token"
#: Twilio's error codes for numbers it will not send to.
ERRORS = {
    21211: "Invalid 'To' Phone Number",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}


class FakeTwilio(LoopbackServer):
    """Twilio Messaging, scriptable per request (see tests.fakes.http)."""

    def __init__(
        self,
        *,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        from_: str = "+15005550006",
    ) -> None:
        super().__init__()
        self.account_sid, self.auth_token, self.from_ = account_sid, auth_token, from_
        #: Messages Twilio created, oldest first (each a Message resource as JSON).
        self.messages: list[dict[str, Any]] = []
        #: Numbers refused with a Twilio error code (21211 invalid, 21610 unsubscribed).
        self.refuse: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._creating = threading.Lock()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Settings overrides that point the gateway at this server."""
        return {
            "sms_provider": "twilio",
            "twilio_account_sid": self.account_sid,
            "twilio_auth_token": self.auth_token,
            "twilio_from": self.from_,
            "twilio_api_base_url": self.url,
            **extra,
        }

    def bodies_to(self, number: str) -> list[str]:
        """What Twilio was asked to send to `number`, in order."""
        return [m["body"] for m in self.messages if m["to"] == number]

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """Move a message along (as the carrier would)."""
        for message in self.messages:
            if message["sid"] == sid:
                message.update(status=status, error_code=error_code)

    def status_callback(
        self, sid: str, status: str, error_code: int | None = None, *, token: str | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """(path with query, form, headers) of the callback Twilio posts for a message."""
        message = next(m for m in self.messages if m["sid"] == sid)
        url = message["status_callback"]
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": message["to"],
            "From": message["from"],
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        signature = RequestValidator(token or self.auth_token).compute_signature(url, form)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return path, form, {"X-Twilio-Signature": signature}

    # -- the API ------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages"
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        if request.path == base + ".json" and request.method == "POST":
            return self._create(request)
        if request.path == base + ".json" and request.method == "GET":
            return self._list(request)
        if request.path.startswith(base + "/") and request.method == "GET":
            if self.default == "down":
                return _error(503, 20500, "Service Unavailable")
            sid = request.path[len(base) + 1 :].removesuffix(".json")
            found = next((m for m in self.messages if m["sid"] == sid), None)
            return Reply(200, json.dumps(found)) if found else _error(404, 20404, "Not found")
        return _error(404, 20404, "The requested resource was not found")

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def _create(self, request: Request) -> Reply:
        action = self.next_action()
        if action == "drop":
            return Reply(0, drop=True)
        if action in {"down", "hang"}:
            self.pause(action)
            return _error(503, 20500, "Service Unavailable")
        to = request.form.get("To", "")
        if to in self.refuse:
            code = self.refuse[to]
            return _error(400, code, ERRORS.get(code, "Refused"))
        message = self._store(request.form)
        self.pause(action)
        return Reply(201, json.dumps(message))

    def _store(self, form: dict[str, str]) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        with self._creating:
            sid = f"SM{next(self._ids):032x}"
            message = {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form.get("To", ""),
                "from": form.get("From") or self.from_,
                "body": form.get("Body", ""),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "num_media": "0",
                "error_code": None,
                "error_message": None,
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
                "api_version": "2010-04-01",
                "price": None,
                "price_unit": "USD",
                "status_callback": form.get("StatusCallback", ""),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            }
            self.messages.append(message)
        return message

    def _list(self, request: Request) -> Reply:
        if self.default == "down":  # scripted actions are for creates; an outage is for all
            return _error(503, 20500, "Service Unavailable")
        to = request.query.get("To")
        found = [m for m in reversed(self.messages) if to is None or m["to"] == to]
        size = int(request.query.get("PageSize", "50"))
        page = {
            "messages": found[:size],
            "end": min(size, len(found)) - 1,
            "start": 0,
            "page": 0,
            "page_size": size,
            "next_page_uri": None,
            "previous_page_uri": None,
            "first_page_uri": request.path,
            "uri": request.path,
        }
        return Reply(200, json.dumps(page))


def _error(status: int, code: int, message: str) -> Reply:
    return Reply(
        status,
        json.dumps(
            {
                "code": code,
                "message": message,
                "status": status,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
            }
        ),
    )
