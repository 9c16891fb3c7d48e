"""Database engine and transactions. Built in init_app, never at import."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, create_engine


class Database:
    """Owns the engine; hands out sessions and transactions."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = _make_engine(url, echo=echo)
        # Write transactions take SQLite's write lock at BEGIN; plain sessions do not,
        # so a long-lived reader never blocks the writers (PostgreSQL ignores the flag).
        self._write_engine = self.engine.execution_options(paygo_write=True)
        # rq forks a work horse per job: the child must not reuse the parent's sockets.
        # A weak reference, so the fork hook does not keep every engine ever built alive.
        after_fork = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (method := after_fork()) and method())

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine sessions of this database are bound to (reads, writes)."""
        return (self.engine, self._write_engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _after_fork(self) -> None:
        self.engine.dispose(close=False)

    def session(self) -> Session:
        """A new session; the caller closes it."""
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, *, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo)
    # Hosting platforms hand out `postgres://`; we only ship the psycopg 3 driver.
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url.removeprefix(scheme)
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    engine = create_engine(url, echo=echo, poolclass=NullPool,
                           connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself (pysqlite's own BEGIN handling is broken).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # SQLite has no row locks: a write transaction takes the write lock at BEGIN so
        # read-then-write sequences (the device count) are serialised instead of failing
        # late; other sessions begin deferred and never hold the lock while reading.
        if conn.get_execution_options().get("paygo_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
