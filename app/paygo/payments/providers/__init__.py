"""Payment provider plug-ins: one module per provider, registered here by URL slug."""

from __future__ import annotations

from paygo.payments.providers.africastalking import AfricasTalkingProvider
from paygo.payments.providers.airtel import AirtelProvider
from paygo.payments.providers.base import Provider, Reply
from paygo.payments.providers.mpesa import MpesaProvider
from paygo.payments.providers.mtn_momo import MtnMomoProvider

__all__ = ["PROVIDERS", "Provider", "Reply", "get"]

PROVIDERS: dict[str, Provider] = {
    p.slug: p
    for p in (MpesaProvider(), MtnMomoProvider(), AirtelProvider(), AfricasTalkingProvider())
}


def get(slug: str) -> Provider | None:
    """The provider served at /payments/<slug>/..., if there is one."""
    return PROVIDERS.get(slug)
