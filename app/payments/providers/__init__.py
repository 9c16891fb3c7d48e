"""Payment provider plug-ins: one module per provider, registered here by URL slug."""

from __future__ import annotations

from app.payments.providers.africastalking import AfricasTalkingProvider
from app.payments.providers.airtel import AirtelProvider
from app.payments.providers.base import Provider, Reply
from app.payments.providers.mpesa import MpesaProvider
from app.payments.providers.mtn_momo import MtnMomoProvider

__all__ = ["PROVIDERS", "Provider", "Reply", "get"]

PROVIDERS: dict[str, Provider] = {
    p.slug: p for p in (MpesaProvider(), MtnMomoProvider(), AirtelProvider(),
                        AfricasTalkingProvider())
}


def get(slug: str) -> Provider | None:
    """The provider served at /payments/<slug>/..., if there is one."""
    return PROVIDERS.get(slug)
