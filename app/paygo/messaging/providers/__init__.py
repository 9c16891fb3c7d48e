"""SMS providers behind one small interface, and routing by the recipient's prefix."""

from __future__ import annotations

from paygo.messaging.providers.base import (
    Accepted,
    OutcomeUnknown,
    SendRefused,
    SmsProvider,
    StatusReport,
)
from paygo.settings import Settings

__all__ = ["Accepted", "OutcomeUnknown", "Providers", "SendRefused", "SmsProvider", "StatusReport"]


def _build(name: str, settings: Settings) -> SmsProvider:
    # Imported here so a deployment that uses one provider never imports the other SDK.
    if name == "africastalking":
        from paygo.messaging.providers.africastalking import AfricasTalking

        return AfricasTalking(settings)
    if name == "twilio":
        from paygo.messaging.providers.twilio import Twilio

        return Twilio(settings)
    if name == "console":
        from paygo.messaging.providers.console import Console

        return Console()
    raise KeyError(f"unknown SMS provider {name!r}")


class Providers:
    """The configured providers, built on first use, and the routing table."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, SmsProvider] = {}

    def get(self, name: str) -> SmsProvider:
        """The provider called `name` (built once)."""
        if name not in self._built:
            self._built[name] = _build(name, self.settings)
        return self._built[name]

    def route(self, recipient: str) -> str:
        """Name the provider for an E.164 number: the longest SMS_ROUTES prefix, or the default."""
        digits = recipient.lstrip("+")
        matches = [p for p in self.settings.sms_routes if digits.startswith(p)]
        if not matches:
            return self.settings.sms_provider
        return self.settings.sms_routes[max(matches, key=len)]
