"""A loopback stand-in for Infobip's SMS API, speaking its JSON formats.

`POST /sms/3/messages` (messages[] of sender, destinations[] {to, messageId}, content
{text}, webhooks) with `Authorization: App <key>`; answers 200 with bulkId and
messages[] {messageId, status, destination}; errors as Infobip's
`requestError.serviceException`. `GET /sms/3/logs?messageId=...` answers results[].
`delivery_report` and `inbound` build the JSON bodies Infobip pushes to us.

    with FakeInfobip() as ib:
        app = make_app(**ib.settings())
        ...
        client.post(ib.report_path(), json=ib.delivery_report(ib.messages[0]))
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from tests.fakes.http import LoopbackServer, Reply, Request

API_KEY = "infobip-test-key"
CALLBACK_TOKEN = "infobip-token-123"
#: Status name -> (groupId, groupName, id, description), from Infobip's status codes.
STATUSES: dict[str, tuple[int, str, int, str]] = {
    "PENDING_ACCEPTED": (1, "PENDING", 26, "Message sent to next instance"),
    "PENDING_ENROUTE": (1, "PENDING", 7, "Message sent to next instance"),
    "DELIVERED_TO_OPERATOR": (3, "DELIVERED", 2, "Message delivered to operator"),
    "DELIVERED_TO_HANDSET": (3, "DELIVERED", 5, "Message delivered to handset"),
    "UNDELIVERABLE_NOT_DELIVERED": (2, "UNDELIVERABLE", 9, "Message sent not delivered"),
    "EXPIRED_EXPIRED": (4, "EXPIRED", 15, "Message expired"),
    "REJECTED_NETWORK": (5, "REJECTED", 6, "Network is forbidden"),
    "REJECTED_NOT_ENOUGH_CREDITS": (5, "REJECTED", 12, "Not enough credits"),
    "REJECTED_DESTINATION_BLOCKLISTED": (5, "REJECTED", 14, "Destination blocklisted"),
    "REJECTED_DUPLICATE_MESSAGE_ID": (5, "REJECTED", 23, "Duplicate message id"),
}
NO_ERROR = {
    "groupId": 0,
    "groupName": "OK",
    "id": 0,
    "name": "NO_ERROR",
    "description": "No Error",
    "permanent": False,
}


def status(name: str) -> dict[str, Any]:
    """An Infobip status object."""
    group_id, group_name, status_id, description = STATUSES[name]
    return {
        "groupId": group_id,
        "groupName": group_name,
        "id": status_id,
        "name": name,
        "description": description,
    }


class FakeInfobip(LoopbackServer):
    """Infobip SMS, scriptable per request (see tests.fakes.http)."""

    def __init__(self, *, api_key: str = API_KEY, sender: str = "SunPower") -> None:
        super().__init__()
        self.api_key, self.sender = api_key, sender
        #: Messages Infobip took: {messageId, to, text, sender, webhooks, status}, in order.
        self.messages: list[dict[str, Any]] = []
        #: Numbers (as Infobip writes them, no plus) answered with a status other than
        #: PENDING_ACCEPTED, e.g. REJECTED_DESTINATION_BLOCKLISTED.
        self.statuses: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._accepting = threading.Lock()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Settings overrides that point the gateway at this server."""
        return {
            "sms_provider": "infobip",
            "infobip_base_url": self.url,
            "infobip_api_key": self.api_key,
            "infobip_sender": self.sender,
            "infobip_callback_token": CALLBACK_TOKEN,
            **extra,
        }

    def bodies_to(self, number: str) -> list[str]:
        """What the handset at `number` (E.164) received, in order."""
        return [m["text"] for m in self.messages if m["to"] == number.lstrip("+")]

    def set_status(self, message_id: str, name: str) -> None:
        """Move a message along (as the operator would)."""
        for message in self.messages:
            if message["messageId"] == message_id:
                message["status"] = name

    @staticmethod
    def inbound_path(token: str = CALLBACK_TOKEN) -> str:
        return f"/sms/infobip/{token}"

    @staticmethod
    def report_path(token: str = CALLBACK_TOKEN) -> str:
        return f"/sms/infobip/{token}/delivery"

    def delivery_report(self, message: dict[str, Any], name: str = "DELIVERED_TO_HANDSET") -> Any:
        """The JSON Infobip pushes to a message's delivery report URL."""
        error = dict(NO_ERROR)
        if STATUSES[name][1] != "DELIVERED" and STATUSES[name][1] != "PENDING":
            error.update(groupId=1, groupName="HANDSET_ERRORS", id=27, name="EC_ABSENT_SUBSCRIBER")
        return {
            "results": [
                {
                    "bulkId": message["bulkId"],
                    "messageId": message["messageId"],
                    "to": message["to"],
                    "sender": message["sender"],
                    "sentAt": "2026-11-20T10:15:02.000+0000",
                    "doneAt": "2026-11-20T10:15:04.000+0000",
                    "messageCount": 1,
                    "price": {"pricePerMessage": 0.01, "currency": "EUR"},
                    "status": status(name),
                    "error": error,
                }
            ]
        }

    @staticmethod
    def inbound(*messages: tuple[str, str, str]) -> Any:
        """The JSON Infobip pushes for received messages, each (messageId, from, text)."""
        results = [
            {
                "messageId": message_id,
                "from": sender,
                "to": "254700123456",
                "text": text,
                "cleanText": text.partition(" ")[2],
                "keyword": text.partition(" ")[0].upper(),
                "receivedAt": "2026-11-20T10:15:02.000+0000",
                "smsCount": 1,
                "price": {"pricePerMessage": 0, "currency": "EUR"},
                "callbackData": None,
            }
            for message_id, sender, text in messages
        ]
        return {"results": results, "messageCount": len(results), "pendingMessageCount": 0}

    # -- the API ------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"App {self.api_key}":
            return _error(401, "UNAUTHORIZED", "Invalid login details")
        if request.path == "/sms/3/messages" and request.method == "POST":
            return self._send(request)
        if request.path == "/sms/3/logs" and request.method == "GET":
            return self._logs(request)
        return _error(404, "NOT_FOUND", "Requested resource not found")

    def _send(self, request: Request) -> Reply:
        action = self.next_action()
        if action == "drop":
            return Reply(0, drop=True)
        if action in {"down", "hang"}:
            self.pause(action)
            return _error(503, "GENERAL_ERROR", "Something went wrong. Please contact support.")
        try:
            messages = json.loads(request.body)["messages"]
            destinations = [(m, d) for m in messages for d in m["destinations"]]
            assert destinations and all(isinstance(m["content"]["text"], str) for m in messages)
        except (ValueError, KeyError, TypeError, AssertionError):
            return _error(400, "BAD_REQUEST", "Bad Request")
        with self._accepting:
            bulk_id = f"bulk-{next(self._ids)}"
            answers = [self._accept(bulk_id, m, d) for m, d in destinations]
        self.pause(action)
        return Reply(200, json.dumps({"bulkId": bulk_id, "messages": answers}))

    def _accept(self, bulk_id: str, message: dict[str, Any], destination: dict[str, Any]) -> Any:
        to = str(destination["to"])
        message_id = destination.get("messageId") or f"ib-{next(self._ids)}"
        name = self.statuses.get(to, "PENDING_ACCEPTED")
        if any(m["messageId"] == message_id for m in self.messages):
            # As we read REJECTED_DUPLICATE_MESSAGE_ID: an id Infobip has already taken.
            name = "REJECTED_DUPLICATE_MESSAGE_ID"
        elif name == "PENDING_ACCEPTED":
            self.messages.append(
                {
                    "bulkId": bulk_id,
                    "messageId": message_id,
                    "to": to,
                    "text": message["content"]["text"],
                    "sender": message.get("sender") or "InfoSMS",
                    "webhooks": message.get("webhooks"),
                    "status": name,
                }
            )
        return {
            "messageId": message_id,
            "status": status(name),
            "destination": to,
            "details": {"messageCount": 1},
        }

    def _logs(self, request: Request) -> Reply:
        if self.default == "down":  # scripted actions are for sends; an outage is for all
            return _error(503, "GENERAL_ERROR", "Something went wrong. Please contact support.")
        wanted = set(filter(None, request.query.get("messageId", "").split(",")))
        results = [
            {
                "sender": m["sender"],
                "destination": m["to"],
                "bulkId": m["bulkId"],
                "messageId": m["messageId"],
                "sentAt": "2026-11-20T10:15:02.000+0000",
                "doneAt": "2026-11-20T10:15:04.000+0000",
                "messageCount": 1,
                "status": status(m["status"]),
                "error": NO_ERROR,
                "content": {"text": m["text"]},
            }
            for m in reversed(self.messages)
            if not wanted or m["messageId"] in wanted
        ]
        return Reply(200, json.dumps({"results": results[:50]}))


def _error(status_code: int, message_id: str, text: str) -> Reply:
    body = {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}
    return Reply(status_code, json.dumps(body))
