"""The one small interface every SMS provider implements, and the outcomes it reports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

import requests

from paygo.errors import ProviderError
from paygo.models import MessageStatus


@dataclass(frozen=True)
class Accepted:
    """The provider took the message; `status` is what it said about it."""

    provider_message_id: str | None
    status: MessageStatus = MessageStatus.SENT
    reason: str | None = None


@dataclass(frozen=True)
class StatusReport:
    """A provider's word on one message: a delivery report, a callback or a fetch."""

    provider: str
    provider_message_id: str | None
    status: MessageStatus
    reason: str | None = None
    recipient: str | None = None
    #: Our outbox id when the provider echoes it back (Twilio's callback URL carries it).
    message_id: int | None = None


class SendRefused(ProviderError):
    """The provider did not take the message; `permanent` says whether a retry can help."""


class OutcomeUnknown(ProviderError):
    """The request may have reached the provider: resending blindly could send it twice."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message, permanent=False, reason=reason)


class SmsProvider(ABC):
    """Send an SMS, and (where the provider allows) look a message up afterwards."""

    name = "base"
    #: True when `lookup` returning None proves the provider never took the message.
    authoritative_lookup = False

    @abstractmethod
    def send(self, *, message_id: int, recipient: str, body: str) -> Accepted:
        """Hand one message to the provider."""

    def lookup(
        self, *, message_id: int, recipient: str, body: str, since: datetime
    ) -> Accepted | None:
        """Find a message we may have sent since `since`; None when not found or unknown."""
        return None

    def fetch_status(self, provider_message_id: str) -> StatusReport | None:
        """Ask the provider for a message's current state; None when it cannot tell."""
        return None


def transport_error(provider: str, exc: requests.RequestException) -> ProviderError:
    """Classify a failed HTTP call: refused before sending is safe to retry, later is not."""
    if isinstance(exc, requests.ConnectTimeout) or _never_connected(exc):
        return SendRefused(
            f"{provider} unreachable: {type(exc).__name__}",
            permanent=False,
            reason=f"{provider} unreachable ({type(exc).__name__})",
        )
    if isinstance(exc, requests.Timeout):
        return OutcomeUnknown(
            f"{provider} did not answer in time", reason=f"{provider} timeout after sending"
        )
    return OutcomeUnknown(
        f"{provider} connection failed after sending: {type(exc).__name__}",
        reason=f"{provider} connection lost ({type(exc).__name__})",
    )


def _never_connected(exc: BaseException) -> bool:
    """Whether the error chain shows the TCP connection itself failed (nothing was sent)."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError | ConnectTimeoutError | ConnectionRefusedError):
            return True
        stack.extend(
            [
                item.__cause__,
                item.__context__,
                getattr(item, "reason", None),
                *(a for a in item.args if isinstance(a, BaseException)),
            ]
        )
    return False
