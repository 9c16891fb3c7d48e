"""Operator access to the Metrics server's own routes: an API key (`paygo apikeys create`).

The standard leaves operator authentication to the server ("a JWT token provided by the
cloud provider"); ours is the gateway's API key, sent as `Authorization: Bearer <key>`.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import Session, select

from paygo.crypto import hash_api_key
from paygo.errors import GatewayError
from paygo.models import ApiKey

READERS = ("admin", "operator", "viewer")
WRITERS = ("admin", "operator")


class Unauthorized(GatewayError):
    """No API key, or one we do not know."""

    status_code = 401
    code = "unauthorized"


class Forbidden(GatewayError):
    """A valid API key whose role may not do this."""

    status_code = 403
    code = "forbidden"


def authorize(*, session: Session, header: str | None, roles: Collection[str]) -> ApiKey:
    """The API key in an `Authorization: Bearer` header, if live and allowed."""
    scheme, _, raw = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthorized("an API key is required: Authorization: Bearer <key>")
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(raw.strip()))).first()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("unknown or revoked API key")
    if key.role not in roles:
        raise Forbidden(f"a {key.role} key may not do this")
    return key
