"""Background jobs: rq on Redis when REDIS_URL is set, inline otherwise.

Jobs take ids, not objects, and are idempotent: each is enqueued under a job id derived
from the work (`process-payment-17`), so enqueuing it twice is harmless. rq 3 accepts only
letters, digits, `_` and `-` in job ids; anything else is folded to `-` here, once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis import Redis
    from rq import Queue

log = logging.getLogger(__name__)

#: Backoff for transient failures: about 5 s, 30 s, 2 min, 10 min, 30 min, with jitter.
BACKOFF_SECONDS = (5, 30, 120, 600, 1800)
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
#: rq's statuses of a job still to run (rq is imported only when Redis is used).
_PENDING = {"queued", "started", "scheduled", "deferred"}


class JobQueue:
    """Enqueue work by function and id; runs it inline when there is no Redis."""

    def __init__(self, redis: Redis | None, *, name: str = "paygo") -> None:
        self.redis = redis
        self.queue: Queue | None = None
        if redis is not None:
            from rq import Queue

            self.queue = Queue(name, connection=redis)

    @property
    def inline(self) -> bool:
        return self.queue is None

    def enqueue(
        self,
        func: Callable[..., Any],
        *args: Any,
        job_id: str,
        retries: int = 0,
        delay: timedelta | None = None,
    ) -> None:
        """Run `func(*args)` in the background once; a pending job with this id is kept."""
        job_id = _UNSAFE_ID.sub("-", job_id)
        if self.queue is None:
            self._run_inline(func, args, job_id)
            return
        from rq import Retry
        from rq.job import Job

        existing = (
            Job.fetch(job_id, connection=self.queue.connection)
            if Job.exists(job_id, connection=self.queue.connection)
            else None
        )
        if existing is not None and existing.get_status(refresh=False) in _PENDING:
            return
        retry = Retry(max=retries, interval=list(BACKOFF_SECONDS[:retries])) if retries else None
        if delay is not None and delay.total_seconds() > 0:
            self.queue.enqueue_in(
                delay,
                func,
                *args,
                job_id=job_id,
                retry=retry,
                result_ttl=3600,
                failure_ttl=7 * 86400,
            )
        else:
            self.queue.enqueue(
                func, *args, job_id=job_id, retry=retry, result_ttl=3600, failure_ttl=7 * 86400
            )

    @staticmethod
    def _run_inline(func: Callable[..., Any], args: tuple[Any, ...], job_id: str) -> None:
        # The caller has committed its transaction; a failure here is logged and left to
        # the sweeps (the database, not the queue, is the source of truth).
        try:
            func(*args)
        except Exception:
            log.exception("inline job %s failed", job_id)
