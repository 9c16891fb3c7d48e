"""The backplane on Redis: keys, counters and scored sets under `paygo:`, jobs on rq.

Every call waits at most REDIS_TIMEOUT_SECONDS (0.2 s by default) for Redis: the payment
acknowledgement, the USSD hop and /healthz call it, and a frozen Redis must not hold them.
A Redis failure is raised as `paygo.errors.Unavailable`: callers on those paths treat it
as "not now" (the database is the truth and the sweeps catch up), and any other edge
answers it as a GatewayError (503), never as a 500. An rq worker has a connection of its
own (`worker_connection`), whose read timeout rq sets past its blocking wait for jobs.

Jobs take ids, not objects, and are idempotent: each is enqueued under an id derived
from the work (`process-payment-17`), so enqueuing it twice is harmless. rq 3 accepts
only letters, digits, `_` and `-` in job ids; anything else is folded to `-` here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, ClassVar, ParamSpec, TypeVar

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from paygo.backplane.base import BACKOFF_SECONDS, FAILURE_TTL, RESULT_TTL, Backplane
from paygo.errors import Unavailable

PREFIX = "paygo:"
QUEUE = "paygo"
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
P = ParamSpec("P")
R = TypeVar("R")


def _answered(method: Callable[P, R]) -> Callable[P, R]:
    """Turn Redis failing or timing out into Unavailable, a GatewayError every edge answers
    (an apology screen, a 503), never a 500."""

    @wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except RedisError as exc:
            raise Unavailable(f"Redis did not answer ({type(exc).__name__})") from exc

    return call


class RedisBackplane(Backplane):
    """Keys, counters and scored sets in Redis; jobs on the rq queue `paygo`."""

    service: ClassVar[str | None] = "redis"
    inline: ClassVar[bool] = False

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.queue = Queue(QUEUE, connection=self.redis)
        self._held: tuple[int, Redis] | None = None
        self._worker: Redis | None = None

    @property
    def client(self) -> Redis:
        """One connection kept per process for single commands (redis-py locks it).

        Taking a connection from the pool and giving it back costs more than a command; a
        USSD hop makes two. A forked process opens its own.
        """
        if self._held is None or self._held[0] != os.getpid():
            self._held = (
                os.getpid(),
                Redis(connection_pool=self.redis.connection_pool, single_connection_client=True),
            )
        return self._held[1]

    def worker_connection(self) -> Redis:
        """The rq worker's own connection: rq sets its read timeout past its blocking wait."""
        if self._worker is None:
            self._worker = Redis.from_url(self.url, socket_connect_timeout=5)
        return self._worker

    @_answered
    def get(self, key: str, *, now: datetime) -> str | None:
        """The value of a live key, or None."""
        raw = self.client.get(PREFIX + key)
        return raw.decode() if isinstance(raw, bytes) else raw

    @_answered
    def put(self, key: str, value: str, *, ttl: timedelta, now: datetime) -> None:
        """Set a key for `ttl`, whatever it held."""
        self.client.set(PREFIX + key, value, px=_ms(ttl))

    @_answered
    def put_if_absent(self, key: str, value: str, *, ttl: timedelta, now: datetime) -> bool:
        """Set a key for `ttl` unless it is live; True when this call set it."""
        return bool(self.client.set(PREFIX + key, value, px=_ms(ttl), nx=True))

    @_answered
    def delete(self, key: str) -> None:
        """Forget a key, a counter or a scored set."""
        self.client.delete(PREFIX + key)

    @_answered
    def count(self, key: str, *, ttl: timedelta, now: datetime) -> int:
        """Add one to a counter and return it; a counter lives `ttl` from its first count."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(PREFIX + key, 0, px=_ms(ttl), nx=True)
            pipe.incr(PREFIX + key)
            _, value = pipe.execute()
        return int(value)

    @_answered
    def add_scored(
        self,
        key: str,
        member: str,
        score: float,
        *,
        drop_below: float,
        ttl: timedelta,
        now: datetime,
    ) -> None:
        """Add (or re-score) a member, forgetting those scored below `drop_below`."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(PREFIX + key, {member: score})
            pipe.zremrangebyscore(PREFIX + key, "-inf", f"({drop_below}")
            pipe.pexpire(PREFIX + key, _ms(ttl))
            pipe.execute()

    @_answered
    def scored(self, key: str, *, above: float, now: datetime) -> list[tuple[str, float]]:
        """The members scored above `above`, with their scores."""
        pairs: list[tuple[bytes, float]] = self.client.zrangebyscore(  # type: ignore[assignment]
            PREFIX + key, f"({above}", "+inf", withscores=True
        )
        return [(member.decode(), float(score)) for member, score in pairs]

    @_answered
    def keys(self, prefix: str, *, now: datetime) -> list[str]:
        """The keys whose names start with `prefix`, sorted (SCAN: never blocks Redis)."""
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", PREFIX + prefix) + "*"
        found = self.redis.scan_iter(match=pattern, count=500)
        return sorted(key.decode().removeprefix(PREFIX) for key in found)

    @_answered
    def enqueue(
        self,
        func: Callable[..., Any],
        *args: Any,
        job_id: str,
        retries: int = 0,
        delay: timedelta | None = None,
        fresh: bool = False,
    ) -> None:
        """Queue `func(*args)` once under `job_id`; a pending job with this id is kept."""
        job_id = _UNSAFE_ID.sub("-", job_id)
        if not fresh and self._pending(job_id):
            return
        options: dict[str, Any] = {
            "job_id": job_id,
            "result_ttl": RESULT_TTL,
            "failure_ttl": FAILURE_TTL,
            "retry": Retry(max=retries, interval=list(BACKOFF_SECONDS[:retries]))
            if retries
            else None,
        }
        if delay is not None and delay.total_seconds() > 0:
            self.queue.enqueue_in(delay, func, *args, **options)
            return
        # One round trip: rq's enqueue makes several writes.
        with self.redis.pipeline() as pipe:
            self.queue.enqueue(func, *args, pipeline=pipe, **options)
            pipe.execute()

    def _pending(self, job_id: str) -> bool:
        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            return False
        return job.get_status(refresh=False) in _PENDING

    @_answered
    def ping(self) -> None:
        """Raise when Redis does not answer."""
        self.client.ping()

    def close(self) -> None:
        """Give back this process's connections."""
        if self._held is not None:
            self._held[1].close()
            self._held = None
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        self.redis.close()


def _ms(ttl: timedelta) -> int:
    return max(1, int(ttl.total_seconds() * 1000))
