"""The one small interface to what the gateway's processes share besides their rows.

Short-lived keys (a USSD session between hops, "a drain is queued"), counters that expire
(rate limits), time-scored sets (wrong account numbers in the last day, payments held back
until a time) and the job queue. `paygo.backplane.redis` keeps them in Redis and queues
jobs on rq; `paygo.backplane.database` keeps them in a table and runs jobs at once, in
the calling process. `paygo.backplane.connect` picks one when the app is built; nothing
else asks whether Redis is there.

Times: the database backplane expires keys by the `now` its callers pass (the clock tests
drive); Redis expires them by its own clock. Scores are the caller's numbers on both.
Failures: a backplane that does not answer raises `paygo.errors.Unavailable`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar

#: Backoff of a job retried after a transient failure: about 5 s, 30 s, 2 min, 10 min, 30 min.
BACKOFF_SECONDS = (5, 30, 120, 600, 1800)
#: How long a finished job's result is kept, and a failed job (for an operator to look at).
RESULT_TTL, FAILURE_TTL = 3600, 7 * 86400


class Backplane(ABC):
    """Keys with a time to live, expiring counters, time-scored sets, and the job queue."""

    #: The outside service it needs ("redis"), which /healthz then checks; None when it
    #: lives in the database.
    service: ClassVar[str | None] = None
    #: True when a job runs at once in the calling process, not on a queue.
    inline: ClassVar[bool] = False
    #: False when expired entries stay until `prune` deletes them (paygo.schedule runs it).
    expires_by_itself: ClassVar[bool] = True

    @abstractmethod
    def get(self, key: str, *, now: datetime) -> str | None:
        """The value of a live key, or None."""

    @abstractmethod
    def put(self, key: str, value: str, *, ttl: timedelta, now: datetime) -> None:
        """Set a key for `ttl`, whatever it held."""

    @abstractmethod
    def put_if_absent(self, key: str, value: str, *, ttl: timedelta, now: datetime) -> bool:
        """Set a key for `ttl` unless it is live; True when this call set it."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget a key, a counter or a scored set."""

    @abstractmethod
    def count(self, key: str, *, ttl: timedelta, now: datetime) -> int:
        """Add one to a counter and return it; a counter lives `ttl` from its first count."""

    @abstractmethod
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
        """Add (or re-score) a member of a scored set, forgetting members scored below
        `drop_below`; the set lives `ttl` from this call."""

    @abstractmethod
    def scored(self, key: str, *, above: float, now: datetime) -> list[tuple[str, float]]:
        """The members of a scored set scored above `above`, with their scores."""

    @abstractmethod
    def keys(self, prefix: str, *, now: datetime) -> list[str]:
        """The live keys, counters and scored sets whose names start with `prefix`, sorted
        (for an operator's list: it reads them all)."""

    @abstractmethod
    def enqueue(
        self,
        func: Callable[..., Any],
        *args: Any,
        job_id: str,
        retries: int = 0,
        delay: timedelta | None = None,
        fresh: bool = False,
    ) -> None:
        """Run `func(*args)` in the background once; a pending job with this id is kept.

        `retries` retries a failure with BACKOFF_SECONDS; `delay` runs it later. `fresh`
        says the id is new (it carries a random part): nothing is looked up first.
        """

    @abstractmethod
    def ping(self) -> None:
        """Raise when the backplane does not answer."""

    def prune(self, *, now: datetime) -> int:
        """Forget what has expired; how many entries (only a store that keeps them)."""
        return 0

    @abstractmethod
    def close(self) -> None:
        """Give back connections (the app is going away)."""
