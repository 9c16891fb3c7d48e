"""The one small interface every SMS provider implements, and the types it speaks.

A provider module turns our outbound message into its API call and its answers into
`Accepted` or an error; and it turns its own web hooks (an inbound SMS, a delivery report)
into `InboundSms` and `StatusReport`, after checking that the request really is its own.
Nothing here touches the database or Flask: the blueprint in `paygo.web.sms` hands a
provider a `Callback` and renders the `Reply` it returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from paygo.crypto import same
from paygo.errors import ConfigurationError, Forbidden, NotFound, ProviderError
from paygo.models import MessageStatus, OutboundMessage

if TYPE_CHECKING:
    import requests

    from paygo.settings import Settings


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


@dataclass(frozen=True)
class InboundSms:
    """One SMS a customer sent us: the sender in E.164, the text, the provider's id."""

    phone: str
    text: str
    provider_message_id: str


@dataclass(frozen=True)
class Callback:
    """A request a provider made to us, as plain data (the blueprint builds it)."""

    #: The public URL the provider called: PUBLIC_BASE_URL, the path and the query.
    url: str
    #: "" for an inbound SMS, else the provider's report route ("delivery", "status").
    event: str = ""
    #: The secret path segment, for providers that authenticate with one.
    token: str | None = None
    #: Header names in lower case.
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] = field(default_factory=dict)
    args: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class Answer(Protocol):
    """What answering an inbound SMS gave (conversations.service.SmsAnswer fits)."""

    @property
    def text(self) -> str: ...
    @property
    def message_id(self) -> int: ...
    @property
    def repeated(self) -> bool: ...


@dataclass(frozen=True)
class Reply:
    """What goes back to the provider: a status and a JSON object, a text, or nothing."""

    status: int
    body: Mapping[str, Any] | str | None = None
    mimetype: str = "application/json"


#: What recording one delivery report gave: the report, and our message (None: not ours).
Recorded = tuple[StatusReport, OutboundMessage | None]


class SendRefused(ProviderError):
    """The provider did not take the message; `permanent` says whether a retry can help."""


class OutcomeUnknown(ProviderError):
    """The request may have reached the provider: resending blindly could send it twice."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message, permanent=False, reason=reason)


class SmsProvider(ABC):
    """An SMS provider: sending, looking a message up, and reading its web hooks.

    A subclass is built once per app from the settings, so building it must be cheap and
    must not fail: an API client that needs credentials is made on first use.
    """

    #: Our name for it: SMS_PROVIDER, SMS_ROUTES, the /sms/<name> URLs, the outbox.
    name: ClassVar[str] = "base"
    #: True when `lookup` returning None proves the provider never took the message.
    authoritative_lookup: ClassVar[bool] = False
    #: The last URL segment of its delivery reports (/sms/<name>/<report_route>); None: none.
    report_route: ClassVar[str | None] = None
    #: The Settings field holding the secret path segment of its web hooks; None: unused.
    token_setting: ClassVar[str | None] = None
    #: Environment variables (and their Settings fields) needed to send through it.
    required: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: True when it sends our reply to an inbound SMS itself, from our HTTP answer.
    replies_inline: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        """Refuse settings that cannot send through this provider, naming the variable."""
        for variable, name in cls.required:
            if not getattr(settings, name):
                raise ConfigurationError(
                    f"SMS provider {cls.name} is selected but {variable} is not set",
                    setting=variable,
                )

    # -- sending ---------------------------------------------------------------------------
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

    # -- web hooks -------------------------------------------------------------------------
    def verify(self, callback: Callback) -> None:
        """Refuse a request that is not the provider's: NotFound (not set up) or Forbidden."""
        if self.token_setting is None:
            return
        expected = getattr(self.settings, self.token_setting) or None
        if expected is None:
            raise NotFound(f"{self.name} web hooks are not configured")
        if callback.token is None or not same(callback.token, expected):
            raise Forbidden("wrong path token")

    def parse_inbound(self, callback: Callback) -> Sequence[InboundSms]:
        """Read the inbound messages of one request; InvalidInput when unreadable."""
        raise NotFound(f"{self.name} takes no inbound messages here")

    def parse_reports(self, callback: Callback) -> Sequence[StatusReport]:
        """Read the delivery reports of one request; InvalidInput when unreadable."""
        raise NotFound(f"{self.name} sends no delivery reports here")

    def inbound_reply(self, answers: Sequence[Answer]) -> Reply:
        """Acknowledge inbound messages (JSON: queued or repeated, and our reply's id)."""
        items = [{"status": _answered(a), "message_id": a.message_id} for a in answers]
        if len(items) == 1:
            return Reply(200, items[0])
        return Reply(200, {"status": "ok", "messages": items})

    def report_reply(self, recorded: Sequence[Recorded]) -> Reply:
        """Acknowledge delivery reports (JSON: how many were about our messages)."""
        ours = sum(message is not None for _, message in recorded)
        return Reply(200, {"status": "ok", "recorded": ours, "ignored": len(recorded) - ours})


def _answered(answer: Answer) -> str:
    return "repeated" if answer.repeated else "queued"


def transport_error(provider: str, exc: requests.RequestException) -> ProviderError:
    """Classify a failed HTTP call: refused before sending is safe to retry, later is not."""
    import requests  # only the HTTP providers call this; settings checks need none of it

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
