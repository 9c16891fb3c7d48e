"""Liveness and readiness for load balancers and the Procfile's web process."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from paygo.gateway import current_gateway

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Answer whether the database (and Redis, when configured) respond.

    Redis is asked with the backplane's short timeout (REDIS_TIMEOUT_SECONDS): a frozen
    Redis makes this answer `degraded` at once, never a 500 or a hang.
    """
    gateway = current_gateway()
    checks: dict[str, str] = {}
    try:
        with gateway.db.session() as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {type(exc).__name__}"
    service = gateway.backplane.service
    if service is not None:
        try:
            gateway.backplane.ping()
            checks[service] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks[service] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "degraded", checks=checks), 200 if healthy else 503
