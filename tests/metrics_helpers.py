"""Test helpers for the Metrics server: stored readings, boxes' state, operator API keys."""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session, col, select

from paygo.crypto import hash_api_key
from paygo.models import ApiKey, AuditLog, DeviceData, MetricsBox
from tests.payment_helpers import release

API = "/openpaygo/metrics"


def readings(session: Session, device_id: int | None) -> list[DeviceData]:
    """A device's stored readings, oldest first, read fresh."""
    found = list(
        session.exec(
            select(DeviceData)
            .where(DeviceData.device_id == device_id)
            .order_by(col(DeviceData.at), col(DeviceData.kind))
            .execution_options(populate_existing=True)
        )
    )
    release(session)
    return found


def box_state(session: Session, device_id: int | None) -> MetricsBox | None:
    """A device's Metrics row, read fresh."""
    found = session.get(MetricsBox, device_id, populate_existing=True)
    release(session)
    return found


def refusals(session: Session) -> list[dict[str, Any]]:
    """The audit lines of refused Metrics requests."""
    import json

    lines = session.exec(select(AuditLog).where(AuditLog.action == "metrics.refused")).all()
    release(session)
    return [{"target": line.target_id, **json.loads(line.detail)} for line in lines]


def api_key(session: Session, role: str = "operator") -> dict[str, str]:
    """A fresh API key of this role, as the Authorization header that carries it."""
    raw = "pg_" + secrets.token_urlsafe(32)
    session.add(ApiKey(role=role, prefix=raw[:10], key_hash=hash_api_key(raw)))
    session.commit()
    return {"Authorization": f"Bearer {raw}"}
