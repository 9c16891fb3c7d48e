"""SMS provider plug-ins: one module per provider, registered here by name.

Adding a provider is a module in this package (a subclass of `SmsProvider`: sending,
looking a message up, reading its web hooks, its settings) and one line in `REGISTRY`.
Its name is then accepted by SMS_PROVIDER and SMS_ROUTES, its inbound messages and
delivery reports are served at /sms/<name>[/<report route>] (paygo.web.sms), and the
dispatcher sends through it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from paygo.errors import ConfigurationError
from paygo.messaging.providers.base import (
    Accepted,
    Callback,
    InboundSms,
    OutcomeUnknown,
    Reply,
    SendRefused,
    SmsProvider,
    StatusReport,
)

if TYPE_CHECKING:
    from paygo.settings import Settings

__all__ = [
    "REGISTRY",
    "Accepted",
    "Callback",
    "InboundSms",
    "OutcomeUnknown",
    "Providers",
    "Reply",
    "SendRefused",
    "SmsProvider",
    "StatusReport",
    "check_settings",
    "plugin",
]

#: Provider name -> "module:class". A module is imported only when its provider is used,
#: so a deployment on one provider never loads another's SDK.
REGISTRY: dict[str, str] = {
    "console": "paygo.messaging.providers.console:Console",
    "africastalking": "paygo.messaging.providers.africastalking:AfricasTalking",
    "twilio": "paygo.messaging.providers.twilio:Twilio",
    "infobip": "paygo.messaging.providers.infobip:Infobip",
}


def plugin(name: str) -> type[SmsProvider]:
    """The provider class registered as `name`; KeyError when there is none."""
    module, _, attribute = REGISTRY[name].partition(":")
    found: type[SmsProvider] = getattr(importlib.import_module(module), attribute)
    return found


def check_settings(settings: Settings) -> None:
    """Refuse an unknown provider name, or a selected provider missing its settings."""
    if settings.sms_provider not in REGISTRY:
        raise ConfigurationError(
            f"SMS_PROVIDER must be one of {', '.join(REGISTRY)}", setting="SMS_PROVIDER"
        )
    for name in sorted({settings.sms_provider, *settings.sms_routes.values()}):
        plugin(name).check_settings(settings)


class Providers:
    """The app's providers, each built on first use, and the routing table."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, SmsProvider] = {}

    def get(self, name: str) -> SmsProvider:
        """The provider called `name` (built once); KeyError when none is registered."""
        if name not in self._built:
            self._built[name] = plugin(name)(self.settings)
        return self._built[name]

    def route(self, recipient: str) -> str:
        """Name the provider for an E.164 number: the longest SMS_ROUTES prefix, or the default."""
        digits = recipient.lstrip("+")
        matches = [p for p in self.settings.sms_routes if digits.startswith(p)]
        if not matches:
            return self.settings.sms_provider
        return self.settings.sms_routes[max(matches, key=len)]
