"""The backplane: the same keys, counters, scored sets and jobs on Redis and in the database,
and a Redis that does not answer costs a request path at most REDIS_TIMEOUT_SECONDS."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
import redis
from flask import Flask
from sqlmodel import Session, select

from paygo.backplane import Backplane, DatabaseBackplane
from paygo.backplane.redis import RedisBackplane
from paygo.db import Database
from paygo.errors import Unavailable
from paygo.models import BackplaneEntry, Payment, PaymentStatus, utcnow
from tests.conversation_data import KNOWN, NOW, account, gw, ussd_app
from tests.payment_helpers import MpesaPaybill
from tests.ussd_dialer import UssdDialer

MINUTE = timedelta(minutes=1)
T = TypeVar("T")


@pytest.fixture(params=["database", "redis"])
def backplane(
    request: pytest.FixtureRequest, database_url: str, redis_url: str, redis_client: redis.Redis
) -> Iterator[Backplane]:
    """Each backplane, empty."""
    db = Database(database_url)
    shared: Backplane = (
        RedisBackplane(redis_url, timeout=1.0)
        if request.param == "redis"
        else DatabaseBackplane(db)
    )
    yield shared
    shared.close()
    with db.transaction() as session:
        for entry in session.exec(select(BackplaneEntry)):
            session.delete(entry)
    db.dispose()


def test_a_key_holds_its_value_until_deleted_and_a_put_replaces_it(backplane: Backplane) -> None:
    now = utcnow()
    assert backplane.get("k", now=now) is None
    backplane.put("k", "one", ttl=MINUTE, now=now)
    backplane.put("k", "two", ttl=MINUTE, now=now)
    assert backplane.get("k", now=now) == "two"
    backplane.delete("k")
    assert backplane.get("k", now=now) is None


def test_set_if_absent_sets_a_key_once_while_it_lives(backplane: Backplane) -> None:
    now = utcnow()
    assert backplane.put_if_absent("flag", "first", ttl=MINUTE, now=now)
    assert not backplane.put_if_absent("flag", "second", ttl=MINUTE, now=now)
    assert backplane.get("flag", now=now) == "first"
    backplane.delete("flag")
    assert backplane.put_if_absent("flag", "third", ttl=MINUTE, now=now)


def test_a_counter_counts_from_one(backplane: Backplane) -> None:
    now = utcnow()
    assert [backplane.count("hits", ttl=MINUTE, now=now) for _ in range(3)] == [1, 2, 3]
    assert backplane.count("other", ttl=MINUTE, now=now) == 1


def test_a_scored_set_keeps_members_by_score_and_forgets_those_below(
    backplane: Backplane,
) -> None:
    now = utcnow()
    for member, score in (("a", 10.0), ("b", 20.0), ("c", 30.0)):
        backplane.add_scored("set", member, score, drop_below=0, ttl=MINUTE, now=now)
    assert backplane.scored("set", above=15, now=now) == [("b", 20.0), ("c", 30.0)]
    backplane.add_scored("set", "a", 40.0, drop_below=25, ttl=MINUTE, now=now)  # re-scored
    assert backplane.scored("set", above=0, now=now) == [("c", 30.0), ("a", 40.0)]
    backplane.delete("set")
    assert backplane.scored("set", above=0, now=now) == []


def test_keys_are_listed_by_prefix(backplane: Backplane) -> None:
    now = utcnow()
    for key in ("lookup-fail:+254700000002", "lookup-fail:+254700000001", "ussd:s1"):
        backplane.add_scored(key, "m", 1.0, drop_below=0, ttl=MINUTE, now=now)
    backplane.put("lookup-fail*", "a name with a wildcard", ttl=MINUTE, now=now)
    assert backplane.keys("lookup-fail:", now=now) == [
        "lookup-fail:+254700000001",
        "lookup-fail:+254700000002",
    ]
    assert backplane.keys("lookup-fail*", now=now) == ["lookup-fail*"]


def test_keys_and_members_of_any_length_are_kept_apart(backplane: Backplane) -> None:
    now = utcnow()
    first, second = "k" * 300 + "1", "k" * 300 + "2"
    backplane.put(first, "one", ttl=MINUTE, now=now)
    backplane.put(second, "two", ttl=MINUTE, now=now)
    assert (backplane.get(first, now=now), backplane.get(second, now=now)) == ("one", "two")
    backplane.add_scored("set", "m" * 150, 1.0, drop_below=0, ttl=MINUTE, now=now)
    assert len(backplane.scored("set", above=0, now=now)) == 1


def test_redis_expires_keys_by_its_own_clock(redis_url: str, redis_client: redis.Redis) -> None:
    shared = RedisBackplane(redis_url, timeout=1.0)
    now = utcnow()
    shared.put("session", "x", ttl=timedelta(seconds=200), now=now)
    shared.count("hits", ttl=MINUTE, now=now)
    shared.count("hits", ttl=timedelta(hours=1), now=now)  # the first count set its life
    assert 190_000 < redis_client.pttl("paygo:session") <= 200_000
    assert 50_000 < redis_client.pttl("paygo:hits") <= 60_000
    shared.close()


def test_the_database_expires_entries_by_the_callers_clock_and_prunes_them(
    app: Flask, session: Session
) -> None:
    shared = gw(app).backplane
    assert isinstance(shared, DatabaseBackplane)
    shared.put("session", "x", ttl=timedelta(seconds=200), now=NOW)
    assert shared.get("session", now=NOW + timedelta(seconds=199)) == "x"
    assert shared.get("session", now=NOW + timedelta(seconds=200)) is None
    assert shared.put_if_absent("session", "y", ttl=MINUTE, now=NOW + timedelta(seconds=200))
    assert shared.count("hits", ttl=MINUTE, now=NOW) == 1
    assert shared.count("hits", ttl=MINUTE, now=NOW + timedelta(seconds=30)) == 2
    assert shared.count("hits", ttl=MINUTE, now=NOW + MINUTE) == 1  # a new minute
    shared.add_scored("set", "m", 1.0, drop_below=0, ttl=MINUTE, now=NOW)
    assert shared.scored("set", above=0, now=NOW + MINUTE) == []
    assert shared.prune(now=NOW + timedelta(hours=1)) == 3
    assert session.exec(select(BackplaneEntry)).all() == []


def test_without_redis_a_job_runs_at_once_and_a_failure_is_only_logged(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    shared = gw(app).backplane
    done: list[int] = []
    shared.enqueue(done.append, 7, job_id="append-7")
    assert done == [7]

    def fails() -> None:
        raise RuntimeError("boom")

    shared.enqueue(fails, job_id="fails")
    assert "inline job fails failed" in caplog.text


def test_on_redis_a_pending_job_is_not_queued_twice(
    redis_url: str, redis_client: redis.Redis
) -> None:
    shared = RedisBackplane(redis_url, timeout=1.0)
    for _ in range(2):
        shared.enqueue(print, "hello", job_id="say hello")  # folded to a valid id
    assert shared.queue.job_ids == ["say-hello"]
    shared.enqueue(print, "again", job_id="say-hello-x", delay=MINUTE)
    assert shared.queue.scheduled_job_registry.get_job_ids() == ["say-hello-x"]
    shared.close()


# -- a Redis that accepts connections and never answers ----------------------------------


@pytest.fixture
def frozen_redis() -> Iterator[str]:
    """A server on loopback that takes connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join(10)
    for conn in held:
        conn.close()
    listener.close()


def _within(seconds: float, action: Callable[[], T]) -> T:
    """Run `action`; it must give up well before a default Redis client would (never)."""
    started = time.monotonic()
    result = action()
    assert time.monotonic() - started < seconds
    return result


def test_a_frozen_redis_is_unavailable_after_the_timeout(frozen_redis: str) -> None:
    shared = RedisBackplane(frozen_redis, timeout=0.2)
    with pytest.raises(Unavailable):
        _within(5, lambda: shared.get("k", now=utcnow()))
    with pytest.raises(Unavailable):
        _within(5, lambda: shared.enqueue(print, job_id="x"))
    shared.close()


def test_with_redis_frozen_the_request_paths_answer_without_a_500(
    make_app: Callable[..., Flask], frozen_redis: str, shared_dir: Path
) -> None:
    app = ussd_app(make_app, redis_url=frozen_redis)
    client = app.test_client()
    health = _within(5, lambda: client.get("/healthz"))
    assert health.status_code == 503
    with gw(app).db.session() as session:
        made = account(session, gw(app))
    ack = _within(5, lambda: MpesaPaybill(client, shared_dir).pay(made.number))
    assert ack.status_code == 200 and ack.get_json()["ResultCode"] == 0
    with gw(app).db.session() as session:  # stored: the payment sweep will reconcile it
        (payment,) = session.exec(select(Payment)).all()
        assert payment.status == PaymentStatus.RECEIVED
    dialer = UssdDialer(client, KNOWN)
    assert _within(5, dialer.dial).startswith("CON ")  # the first screen needs no session
    # The next hop finds no session to go on with: the apology screen, in the network's format.
    assert _within(5, lambda: dialer.answer("1")).startswith("END ")
