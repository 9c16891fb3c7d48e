"""The small interface every payment provider plug-in implements, and its parsing helpers.

A provider turns its own callback format into our `PaymentNotice` (or a `ValidationQuery`)
and renders its own replies. Nothing here touches the database or Flask, so a new provider
is one module and a line in the registry; the reconciler never changes.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from paygo.errors import GatewayError, InvalidInput
from paygo.payments.notice import PaymentNotice, ValidationQuery
from paygo.settings import Settings

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The external ids we give collection requests: acc-<account number>-<nonce>.
_EXTERNAL_ID = re.compile(r"^acc-(?P<account>[0-9A-Za-z]+)-[0-9A-Za-z]+$")
MAX_TXN_ID = 80


class CallbackForbidden(GatewayError):
    """A callback failed its authentication (wrong path token, bad signature)."""

    status_code = 403
    code = "forbidden"


@dataclass(frozen=True)
class Reply:
    """What goes back to the provider: an HTTP status and a JSON body (None: empty)."""

    status: int
    body: Mapping[str, Any] | None


class Provider(ABC):
    """A mobile-money provider: its URL, its secret, its format and its replies."""

    slug: ClassVar[str]  # URL segment: /payments/<slug>/<token>[/<event>]
    name: ClassVar[str]  # Payment.provider
    token_setting: ClassVar[str]  # the Settings field holding the path token
    events: ClassVar[frozenset[str]] = frozenset({""})
    methods: ClassVar[frozenset[str]] = frozenset({"POST"})

    def path_token(self, settings: Settings) -> str | None:
        """The configured path token; None means the provider is switched off."""
        value: str | None = getattr(settings, self.token_setting)
        return value or None

    @abstractmethod
    def read(self, event: str, body: bytes, settings: Settings) -> PaymentNotice | ValidationQuery:
        """Turn a callback body into our types; raise InvalidInput or CallbackForbidden."""

    @abstractmethod
    def ack(self, event: str) -> Reply:
        """The reply that tells the provider we have the callback."""

    @abstractmethod
    def error(self, event: str, status: int, message: str) -> Reply:
        """A refusal in the provider's own error format."""

    def validates(self, settings: Settings) -> bool:
        """Whether validation queries are checked (False: every one is accepted)."""
        return True

    def validation_reply(self, accepted: bool) -> Reply:
        """The answer to a validation query (providers without validation never get one)."""
        return self.ack("") if accepted else self.error("", 400, "rejected")


def load_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body; amounts stay exact (Decimal), never float."""
    try:
        data = json.loads(body.decode("utf-8"), parse_float=Decimal)
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return data


def obj(data: Mapping[str, Any], key: str, *, required: bool = False) -> dict[str, Any]:
    """A nested object field; an optional one that is missing or not an object reads as {}."""
    value = data.get(key)
    if isinstance(value, dict):
        return value
    if required:
        raise InvalidInput(f"{key} must be a JSON object", field=key)
    return {}


def text(data: Mapping[str, Any], key: str, *, max_len: int = 120) -> str | None:
    """A descriptive field as clean text, cut to `max_len`; None when missing or empty.

    A value of the wrong type (a list for a name) also reads as None: a stray field must
    not cost the customer the payment, and the raw payload keeps what was sent.
    """
    value = data.get(key)
    if (
        value is None
        or isinstance(value, bool)
        or not isinstance(value, str | int | float | Decimal)
    ):
        return None
    return clean(str(value))[:max_len] or None


def required_text(data: Mapping[str, Any], key: str, *, max_len: int = 120) -> str | None:
    """A field the notice cannot be read without: a wrong type is refused, not ignored."""
    value = data.get(key)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, str | int | Decimal)
    ):
        raise InvalidInput(f"{key} must be a string or a number", field=key)
    return text(data, key, max_len=max_len)


def txn_id(data: Mapping[str, Any], key: str, *, prefix: str = "") -> str | None:
    """A provider transaction id: never cut (a cut id could collide with another)."""
    value = required_text(data, key, max_len=10_000)
    if value is not None and len(prefix + value) > MAX_TXN_ID:
        raise InvalidInput(f"{key} is longer than {MAX_TXN_ID - len(prefix)} characters", field=key)
    return None if value is None else prefix + value


def amount_text(data: Mapping[str, Any], key: str) -> str | None:
    """An amount as sent; a value of the wrong type is kept as text so it is rejected."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
        return clean(str(value))[:60]
    return json.dumps(value, default=str)[:60]


def clean(value: str) -> str:
    """Drop control characters (PostgreSQL refuses NUL) and outer whitespace."""
    return _CONTROL.sub("", value).strip()


def account_from_external_id(external_id: str | None) -> str | None:
    """The account number inside one of our collection request ids, if it is one."""
    found = _EXTERNAL_ID.match(external_id or "")
    return found.group("account") if found else None


def parse_iso(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp with a zone, or None (a bad date never loses a payment)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
