"""For tests of an app on Redis: its rq queue and its Redis client."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from paygo.backplane.redis import RedisBackplane
from paygo.gateway import Gateway


def rq_queue(gateway: Gateway) -> Queue:
    """The app's rq queue (the app must run on Redis)."""
    assert isinstance(gateway.backplane, RedisBackplane), "this app has no REDIS_URL"
    return gateway.backplane.queue


def redis_of(gateway: Gateway) -> Redis:
    """The app's Redis client (the app must run on Redis)."""
    assert isinstance(gateway.backplane, RedisBackplane), "this app has no REDIS_URL"
    return gateway.backplane.redis
