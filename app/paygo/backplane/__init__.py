"""What the gateway's processes share besides their rows: keys, counters, scored sets, jobs.

- `base`: the interface (`Backplane`) every part of the gateway uses.
- `redis`: on Redis, jobs on rq (REDIS_URL set); imported only then.
- `database`: in the database, jobs run at once in the calling process (no REDIS_URL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paygo.backplane.base import BACKOFF_SECONDS, Backplane
from paygo.backplane.database import DatabaseBackplane

if TYPE_CHECKING:
    from paygo.db import Database
    from paygo.settings import Settings

__all__ = ["BACKOFF_SECONDS", "Backplane", "DatabaseBackplane", "connect"]


def connect(settings: Settings, db: Database) -> Backplane:
    """The backplane of this install: Redis when REDIS_URL is set, else the database."""
    if settings.redis_url:
        from paygo.backplane.redis import RedisBackplane  # Redis and rq: only when used

        return RedisBackplane(settings.redis_url, timeout=settings.redis_timeout_seconds)
    return DatabaseBackplane(db)
