"""A loopback stand-in for Africa's Talking's SMS API, so the real `africastalking` SDK runs.

`POST /version1/messaging` (form: username, to, message, from, bulkSMSMode) with the
`apiKey` header; answers 201 with `SMSMessageData` like AT, with a content type that
carries a charset (which makes the SDK return a str, as AT's real replies do).

    with FakeAfricasTalking() as at:
        app = make_app(**at.settings())
        ...
        assert at.bodies_to("+254711000001") == ["..."]
        client.post("/sms/africastalking/delivery", data=at.delivery_report(at.accepted[0]))
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from tests.fakes.http import LoopbackServer, Reply, Request

#: Per-recipient codes AT answers with (a subset of its documented list).
STATUS_NAMES = {
    101: "Success",
    102: "Queued",
    403: "InvalidPhoneNumber",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
}


class FakeAfricasTalking(LoopbackServer):
    """Africa's Talking SMS, scriptable per request (see tests.fakes.http)."""

    def __init__(
        self,
        *,
        username: str = "sandbox",
        api_key: str = "at-test-key",
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        super().__init__()
        self.username, self.api_key, self.content_type = username, api_key, content_type
        #: Messages AT took: {"id", "to", "message", "from"} in order.
        self.accepted: list[dict[str, str]] = []
        #: Per-recipient status code for numbers that must not succeed (406 blacklisted).
        self.recipient_codes: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._accepting = threading.Lock()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Settings overrides that point the gateway at this server."""
        return {
            "sms_provider": "africastalking",
            "at_username": self.username,
            "at_api_key": self.api_key,
            "at_api_base_url": self.url,
            **extra,
        }

    def bodies_to(self, number: str) -> list[str]:
        """What the handset at `number` received, in order."""
        return [m["message"] for m in self.accepted if m["to"] == number]

    def delivery_report(
        self, accepted: dict[str, str], status: str = "Success", failure_reason: str = ""
    ) -> dict[str, str]:
        """The form AT posts to the delivery reports URL for an accepted message."""
        report = {
            "id": accepted["id"],
            "status": status,
            "phoneNumber": accepted["to"],
            "networkCode": "63902",
            "retryCount": "0",
        }
        if failure_reason:
            report["failureReason"] = failure_reason
        return report

    def handle(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != "/version1/messaging":
            return Reply(404, "Not found", "text/plain")
        if request.headers.get("apikey") != self.api_key:
            return Reply(401, "The supplied authentication is invalid", "text/plain")
        if request.form.get("username") != self.username:
            return Reply(401, "The supplied authentication is invalid", "text/plain")
        action = self.next_action()
        if action == "drop":
            return Reply(0, drop=True)
        if action in {"down", "hang"}:
            self.pause(action)
            return Reply(503, "<html><body>503 Service Unavailable</body></html>", "text/html")
        recipients = [
            self._recipient(request.form, n) for n in request.form.get("to", "").split(",") if n
        ]
        self.pause(action)
        return Reply(
            201,
            json.dumps(
                {
                    "SMSMessageData": {
                        "Message": f"Sent to {sum(r['statusCode'] < 200 for r in recipients)}/"
                        f"{len(recipients)} Total Cost: KES 0.8000",
                        "Recipients": recipients,
                    }
                }
            ),
            self.content_type,
        )

    def _recipient(self, form: dict[str, str], number: str) -> dict[str, Any]:
        code = self.recipient_codes.get(number, 101)
        entry: dict[str, Any] = {
            "statusCode": code,
            "number": number,
            "status": STATUS_NAMES.get(code, "Failed"),
            "cost": "KES 0.8000" if code < 200 else "0",
            "messageId": "None",
        }
        if code < 200:
            with self._accepting:
                entry["messageId"] = f"ATXid_{next(self._ids):012d}"
                self.accepted.append(
                    {
                        "id": entry["messageId"],
                        "to": number,
                        "message": form.get("message", ""),
                        "from": form.get("from", ""),
                    }
                )
        return entry
