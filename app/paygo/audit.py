"""The audit log of operator actions."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from paygo.models import AuditLog


def record(
    *,
    session: Session,
    actor: str,
    action: str,
    target_type: str | None = None,
    target_id: object = None,
    **detail: Any,
) -> AuditLog:
    """Write one audit line in the caller's transaction."""
    entry = AuditLog(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        detail=json.dumps(detail, default=str, sort_keys=True),
    )
    session.add(entry)
    return entry
