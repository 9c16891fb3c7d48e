"""Engines belong to their app's Database: gone with it, and never shared across a fork."""

from __future__ import annotations

import gc
import os
import warnings
import weakref
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from paygo import create_app
from paygo.db import Database
from tests.conftest import TEST_SETTINGS
from tests.ussd_dialer import UssdDialer


def _backend_pid(database: Database) -> int:
    with database.engine.connect() as conn:
        pid: int = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _closed_app_refs(settings: dict[str, Any]) -> list[weakref.ref[Any]]:
    """Build an app, use its engines (a USSD dial reads on the autocommit one), close it,
    and return weak references to what it owned."""
    app = create_app(settings)
    app.config["TESTING"] = True
    UssdDialer(app.test_client(), "+254711000001").dial()
    gateway = app.extensions["paygo"]
    with gateway.db.transaction() as session:
        session.execute(text("SELECT 1"))
    refs = [
        weakref.ref(app),
        weakref.ref(gateway.db),
        weakref.ref(gateway.db.engine),
        weakref.ref(gateway.db.autocommit),
        weakref.ref(gateway.backplane),
    ]
    gateway.close()
    return refs


@pytest.mark.parametrize("shared", ["database", "redis"])
def test_a_closed_apps_engines_are_garbage_collected(
    database_url: str, redis_url: str, tmp_path: Path, shared: str, request: pytest.FixtureRequest
) -> None:
    settings = {**TEST_SETTINGS, "database_url": database_url, "instance_path": str(tmp_path)}
    if shared == "redis":
        request.getfixturevalue("redis_client")  # this run's Redis database, emptied after
        settings["redis_url"] = redis_url
    refs = _closed_app_refs(settings)
    gc.collect()
    assert [ref() for ref in refs] == [None] * len(refs)  # nothing process-wide holds them


def test_a_forked_process_opens_its_own_connection_and_leaves_the_parents_alone(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("server connections: PostgreSQL only")
    database = Database(database_url)
    parent = _backend_pid(database)  # pooled: the next checkout here gets it back
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a threaded process
        child = os.fork()
    if child == 0:  # pragma: no cover - the child reports and exits at once
        os.close(read)
        try:
            os.write(write, str(_backend_pid(database)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        childs = int(pipe.read() or 0)
    _, status = os.waitpid(child, 0)
    assert status == 0 and childs not in (0, parent)
    assert _backend_pid(database) == parent  # the parent's session was not ended
    database.dispose()
