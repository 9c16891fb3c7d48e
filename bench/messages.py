"""Messages per second through the dispatcher, against the loopback provider stand-ins.

Run from the repo root: ``.venv/bin/python bench/messages.py``. Each row writes N outbox
rows, then times the dispatcher sending them all (claim, provider call through the real
SDK, record): inline (as `make run` does, one after another) and, when Redis answers on
127.0.0.1:6379, through rq with one `paygo worker` in burst mode (a forked horse per job).
SQLite in a temporary folder; loopback only; bounded in count and time. Prints a table,
then as the last line one JSON object with the figures.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402
from alembic import command  # noqa: E402

from paygo import create_app  # noqa: E402
from paygo.cli.db import alembic_config  # noqa: E402
from paygo.cli.worker import make_worker  # noqa: E402
from paygo.gateway import Gateway  # noqa: E402
from paygo.messaging.sending import sweep  # noqa: E402
from paygo.models import MessageStatus, OutboundMessage  # noqa: E402
from tests.fakes.at_api import FakeAfricasTalking  # noqa: E402
from tests.fakes.infobip_api import FakeInfobip  # noqa: E402
from tests.fakes.twilio_api import FakeTwilio  # noqa: E402

INLINE_COUNT = 500
RQ_COUNT = 200
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
BASE_SETTINGS: dict[str, Any] = {
    "env": "test",
    "secret_key": "bench-secret-key-0123456789",
    "master_key": "bench-master-key-0123456789",
    "log_level": "WARNING",
}


def write_rows(gateway: Gateway, count: int, prefix: str) -> None:
    """Write queued rows directly (no dispatch): the sweep is what is timed."""
    with gateway.db.transaction() as session:
        for i in range(count):
            session.add(
                OutboundMessage(
                    recipient=f"+2547110{i % 100000:05d}",
                    body=f"{prefix} receipt {i}: token 123 456 789",
                )
            )


def sent_count(gateway: Gateway) -> int:
    with gateway.db.session() as session:
        rows = session.exec(
            OutboundMessage.__table__.select().where(OutboundMessage.status == MessageStatus.SENT)  # type: ignore[attr-defined]
        )
        return len(rows.all())


def time_inline(gateway: Gateway, count: int) -> float:
    start = time.perf_counter()
    sweep(gateway, limit=count)
    return time.perf_counter() - start


def time_rq(app: Any, gateway: Gateway, count: int) -> float:
    start = time.perf_counter()
    sweep(gateway, limit=count)
    make_worker(app, periodic=False).work(burst=True, logging_level="WARNING")
    return time.perf_counter() - start


def free_redis_db() -> tuple[redis.Redis, int] | None:
    """A Redis database number of our own (the test suite's lock protocol), or None."""
    admin = redis.Redis.from_url(f"{REDIS_BASE}/0", socket_connect_timeout=2)
    try:
        admin.ping()
    except redis.RedisError:
        return None
    for number in range(15, 0, -1):
        if admin.set(f"paygo-test-lock:{number}", os.getpid(), nx=True, ex=600):
            return admin, number
    return None


def run_case(
    folder: Path, name: str, settings: dict[str, Any], mode: str, count: int, redis_url: str | None
) -> dict[str, Any]:
    url = f"sqlite:///{folder / f'{name}-{mode}.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    app = create_app(
        {
            **BASE_SETTINGS,
            **settings,
            "database_url": url,
            "instance_path": str(folder),
            "redis_url": redis_url,
        }
    )
    gateway: Gateway = app.extensions["paygo"]
    write_rows(gateway, count, name)
    timer: Callable[[], float] = (
        (lambda: time_inline(gateway, count))
        if mode == "inline"
        else (lambda: time_rq(app, gateway, count))
    )
    seconds = timer()
    sent = sent_count(gateway)
    gateway.db.dispose()
    return {
        "provider": name,
        "mode": mode,
        "messages": count,
        "sent": sent,
        "seconds": round(seconds, 3),
        "per_second": round(sent / seconds, 1),
    }


def main() -> int:
    import logging

    logging.disable(logging.WARNING)  # the console provider logs each message at INFO
    results: list[dict[str, Any]] = []
    locked = free_redis_db()
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeAfricasTalking() as at,
        FakeTwilio() as tw,
        FakeInfobip() as ib,
    ):
        providers = {
            "console": {"sms_provider": "console"},
            "africastalking": at.settings(),
            "twilio": tw.settings(),
            "infobip": ib.settings(),
        }
        for name, settings in providers.items():
            results.append(run_case(Path(tmp), name, settings, "inline", INLINE_COUNT, None))
        if locked is not None:
            admin, number = locked
            url = f"{REDIS_BASE}/{number}"
            try:
                for name in ("console", "africastalking"):
                    redis.Redis.from_url(url).flushdb()
                    results.append(run_case(Path(tmp), name, providers[name], "rq", RQ_COUNT, url))
            finally:
                redis.Redis.from_url(url).flushdb()
                admin.delete(f"paygo-test-lock:{number}")
    print(f"{'provider':<16}{'mode':<8}{'messages':>9}{'sent':>7}{'seconds':>10}{'msg/s':>9}")
    for row in results:
        print(
            f"{row['provider']:<16}{row['mode']:<8}{row['messages']:>9}{row['sent']:>7}"
            f"{row['seconds']:>10.2f}{row['per_second']:>9.1f}"
        )
    if locked is None:
        print("(Redis did not answer on 127.0.0.1:6379: rq rows skipped)")
    print(json.dumps({"bench": "messages", "database": "sqlite", "results": results}))
    return 0 if all(r["sent"] == r["messages"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
