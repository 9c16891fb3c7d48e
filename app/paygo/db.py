"""Database engine and transactions. Built in init_app, never at import.

One `Database` per app owns its engine (one connection pool) and the views of it that
differ only in options: writes (SQLite's write lock at BEGIN) and autocommit (single
statements on PostgreSQL, without BEGIN and COMMIT round trips). `dispose` closes the
pool; nothing outside the Database refers to it, so an app that is gone takes its
engine with it. A forked process (an rq work horse) never reuses its parent's
connections: each remembers the process that opened it, and a checkout in another
process replaces it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel, create_engine, select

M = TypeVar("M", bound=SQLModel)


class Database:
    """Owns the engine; hands out sessions and transactions."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = _make_engine(url, echo=echo)
        # Write transactions take SQLite's write lock at BEGIN; plain sessions do not,
        # so a long-lived reader never blocks the writers (PostgreSQL ignores the flag).
        self._write_engine = self.engine.execution_options(paygo_write=True)
        #: For single statements that need no transaction around them (a USSD hop's reads,
        #: the backplane's keys): autocommit on PostgreSQL; SQLite keeps its transactions.
        self.autocommit = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else self.engine
        )

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine sessions of this database are bound to (reads, writes)."""
        return (self.engine, self._write_engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

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


def lock_row(session: Session, model: type[M], ident: int) -> M | None:
    """Load a row locked (FOR UPDATE on PostgreSQL) until the transaction ends, fresh.

    Each call is one statement: whoever locks a row passes it on to the code that writes
    it (see paygo.ledger.locks), so a transaction locks each row once.
    """
    key = model.__table__.primary_key.columns[0]  # type: ignore[attr-defined]
    return session.exec(
        select(model)
        .where(key == ident)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _make_engine(url: str, *, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo)
    # Hosting platforms hand out `postgres://`; we only ship the psycopg 3 driver.
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url.removeprefix(scheme)
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=10)
    # First: the others must not touch a connection that belongs to another process.
    _not_across_forks(engine)
    _ping_when_idle(engine)
    return engine


def _not_across_forks(engine: Engine) -> None:
    """Never hand a connection opened by another process (before a fork) to this one.

    Registered on the engine itself (SQLAlchemy's recipe for os.fork), so it lives and
    dies with it; no process-wide fork hook keeps the engine alive.
    """

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_conn: Any, record: Any) -> None:
        record.info[_PID] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _checked_out(_dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if record.info.get(_PID) != os.getpid():
            # Dropped, not closed: closing would end the parent's session on the server.
            record.dbapi_connection = proxy.dbapi_connection = None
            raise DisconnectionError("the connection was opened by another process")


_PID = "paygo.pid"


#: A pooled connection unused this long is pinged before it is handed out again.
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it has sat idle for a while.

    SQLAlchemy's `pool_pre_ping` costs a round trip on every checkout, which is one in
    every payment acknowledgement. A connection in steady use is known to be alive; one
    that idled may have been closed by the server or a restart, so it is pinged, and
    replaced if the ping fails. (A server restart within the idle window still fails the
    first statement; SQLAlchemy then invalidates the whole pool and the caller answers
    with a retryable error, which providers act on.)
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if dbapi_conn.closed:
            raise DisconnectionError("the connection was closed")
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure: the pool discards it and connects anew
            raise DisconnectionError(f"the connection failed a ping: {exc}") from exc


_IDLE_SINCE = "paygo.idle_since"


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    engine = create_engine(
        url, echo=echo, poolclass=NullPool, connect_args={"check_same_thread": False, "timeout": 30}
    )

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
