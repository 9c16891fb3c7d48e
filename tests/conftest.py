"""Fixtures: the app on SQLite and (when it answers, always in CI) PostgreSQL, real Redis.

Each test run gets its own PostgreSQL database and its own Redis database number, so two
runs on one machine never see each other's data. Tables are emptied after each test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text
from sqlmodel import Session, SQLModel

from paygo import create_app
from paygo.cli import State
from paygo.cli import cli as paygo_cli
from paygo.cli.db import alembic_config
from paygo.gateway import Gateway
from tests.fakes.at_api import FakeAfricasTalking
from tests.fakes.infobip_api import FakeInfobip
from tests.fakes.twilio_api import FakeTwilio

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SHARED = Path(__file__).resolve().parents[2] / "shared"


def _postgres_answers() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        if IN_CI:
            raise
        return False


BACKENDS = ["sqlite", *(["postgresql"] if _postgres_answers() else [])]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder CI puts beside the checkout (reference vectors, samples)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: tests need ../shared beside the checkout")
    return SHARED


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database for this test run, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'paygo.sqlite3'}"
        _migrate(url)
        yield url
        return
    name = f"paygo_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        _migrate(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), "head")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database number of our own (1-15), locked for this run, flushed around tests."""
    admin = redis.Redis.from_url(f"{REDIS_BASE}/0")
    try:
        admin.ping()
    except redis.ConnectionError:
        pytest.fail("Redis does not answer on 127.0.0.1:6379; start it (see README)")
    for number in range(1, 16):
        if admin.set(f"paygo-test-lock:{number}", os.getpid(), nx=True, ex=6 * 3600):
            break
    else:
        pytest.fail("every Redis database 1-15 is locked by another test run")
    try:
        yield f"{REDIS_BASE}/{number}"
    finally:
        admin.delete(f"paygo-test-lock:{number}")
        admin.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """The run's Redis database, empty at the start and end of the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


TEST_SETTINGS: dict[str, Any] = {
    "env": "test",
    "secret_key": "test-secret-key-0123456789",
    "master_key": "test-master-key-0123456789",
    "public_base_url": "https://gateway.example.org",
    "mpesa_callback_token": "mpesa-token-123",
    "mtn_momo_callback_token": "momo-token-123",
    "airtel_callback_token": "airtel-token-123",
    "at_payments_callback_token": "at-token-123",
}


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on this run's database; tables are emptied after the test."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config = {
            **TEST_SETTINGS,
            "database_url": database_url,
            "instance_path": str(tmp_path),
            **overrides,
        }
        app = create_app(config)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["paygo"].close()
    _empty_tables(database_url)


def _empty_tables(url: str) -> None:
    from paygo.db import Database

    database = Database(url)
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(text("DELETE FROM sqlite_sequence")) if _has_sequence(conn) else None
    database.dispose()


def _has_sequence(conn: Any) -> bool:
    return bool(
        conn.execute(text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first()
    )


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The gateway with inline jobs (no Redis), as `make run` serves it."""
    return make_app()


@pytest.fixture
def redis_app(make_app: Callable[..., Flask], redis_url: str, redis_client: redis.Redis) -> Flask:
    """The gateway with jobs on rq and state in this run's Redis database."""
    return make_app(redis_url=redis_url)


@pytest.fixture
def gateway(app: Flask) -> Gateway:
    gw: Gateway = app.extensions["paygo"]
    return gw


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class PaygoRunner(FlaskCliRunner):
    """Click's runner on the `paygo` command line itself, working on the test's app."""

    def invoke(  # type: ignore[override]
        self, cli: Any = None, args: Any = None, **kwargs: Any
    ) -> Result:
        kwargs.setdefault("obj", State(app=self.app))
        kwargs.setdefault("prog_name", "paygo")
        return super().invoke(paygo_cli if cli is None else cli, args, **kwargs)


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return PaygoRunner(app)


@pytest.fixture
def session(gateway: Gateway) -> Iterator[Session]:
    """A session for arranging and checking data; rolled back at the end of the test."""
    with gateway.db.session() as s:
        yield s
        s.rollback()


# -- SMS provider stand-ins: a `slow` answer comes once the client has given up ------------


@pytest.fixture
def at() -> Iterator[FakeAfricasTalking]:
    """Africa's Talking's SMS API on loopback (`at.settings()` points an app at it)."""
    with FakeAfricasTalking() as server:
        yield server


@pytest.fixture
def tw() -> Iterator[FakeTwilio]:
    """Twilio's Messages API on loopback (`tw.settings()` points an app at it)."""
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def ib() -> Iterator[FakeInfobip]:
    """Infobip's SMS API on loopback (`ib.settings()` points an app at it)."""
    with FakeInfobip() as server:
        yield server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-transcripts",
        action="store_true",
        default=False,
        help="rewrite the golden flow transcripts in tests/transcripts/",
    )
