"""The audit log of operator actions."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from paygo.models import AuditLog
from paygo.pages import Page, page


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


def list_entries(
    *,
    session: Session,
    actor: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[AuditLog]:
    """Audit lines newest first; `target` is an id (`10000004`) or `type:id` (`plan:3`)."""
    query = select(AuditLog)
    if actor:
        query = query.where(col(AuditLog.actor) == actor.strip())
    if target:
        kind, _, ident = target.strip().rpartition(":")
        query = query.where(col(AuditLog.target_id) == ident.strip())
        if kind:
            query = query.where(col(AuditLog.target_type) == kind.strip())
    if since is not None:
        query = query.where(col(AuditLog.at) >= since)
    return page(
        session=session,
        query=query,
        listing="audit",
        order=[col(AuditLog.id)],
        key=lambda entry: (entry.id or 0,),
        limit=limit,
        cursor=cursor,
    )
