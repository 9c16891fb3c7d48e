"""What the benches borrow and give back: a migrated PostgreSQL database, a Redis database
number no test run holds, and a free loopback port.

PostgreSQL and Redis are found as the tests find them (TEST_PG_ADMIN_URL, TEST_REDIS_URL),
and the Redis number is taken with the test suite's own lock, so a bench and a test run on
one machine never share data.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated PostgreSQL database of our own, dropped at the end."""
    from alembic import command

    from paygo.cli.db import alembic_config

    name = f"paygo_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        command.upgrade(alembic_config(url), "head")
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_redis() -> Iterator[str]:
    """A Redis database number no test run holds (the tests' lock), flushed before and after."""
    admin = redis.Redis.from_url(f"{REDIS_BASE}/0", socket_connect_timeout=2)
    for number in range(15, 0, -1):
        if admin.set(f"paygo-test-lock:{number}", f"bench-{os.getpid()}", nx=True, ex=3600):
            break
    else:
        raise SystemExit("every Redis database 1-15 is taken by test runs")
    url = f"{REDIS_BASE}/{number}"
    try:
        redis.Redis.from_url(url).flushdb()
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()
        admin.delete(f"paygo-test-lock:{number}")


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
