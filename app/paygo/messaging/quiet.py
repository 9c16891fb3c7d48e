"""Quiet hours: reminders wait for the morning in the customer's own timezone."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta


def zone(name: str | None, default: str) -> zoneinfo.ZoneInfo:
    """The customer's zone, or the default when theirs is unset or unknown."""
    for candidate in (name, default, "UTC"):
        if not candidate:
            continue
        try:
            return zoneinfo.ZoneInfo(candidate)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return zoneinfo.ZoneInfo("UTC")


def is_quiet(hour: int, start: int, end: int) -> bool:
    """Whether a local hour falls in quiet hours `start`..`end` (which may cross midnight)."""
    if start == end:
        return False
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def next_allowed(now: datetime, tz: zoneinfo.ZoneInfo, start: int, end: int) -> datetime:
    """`now` when outside quiet hours, else the end of the quiet hours (UTC)."""
    local = now.astimezone(tz)
    if not is_quiet(local.hour, start, end):
        return now
    morning = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if morning <= local:
        morning = (local + timedelta(days=1)).replace(hour=end, minute=0, second=0, microsecond=0)
    return morning.astimezone(UTC)
