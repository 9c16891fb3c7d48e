"""The console provider for development and the demo: log the message, call it sent.

It takes no inbound messages and sends no reports: /sms/console answers 404.
"""

from __future__ import annotations

import logging

from paygo.messaging.providers.base import Accepted, SmsProvider
from paygo.models import MessageStatus

log = logging.getLogger("paygo.sms")


class Console(SmsProvider):
    """Write each message to the log instead of sending it."""

    name = "console"
    authoritative_lookup = True  # nothing leaves the process: not logged means not sent

    def send(self, *, message_id: int, recipient: str, body: str) -> Accepted:
        """Log the message and report it sent."""
        log.info("SMS #%s to %s: %s", message_id, recipient, body)
        return Accepted(f"console-{message_id}", MessageStatus.SENT, "console: logged")
