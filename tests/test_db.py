"""The database layer: connections that died while idle, and row locks held per transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlmodel import Session

from paygo import db as db_module
from paygo.db import Database, lock_row
from paygo.gateway import Gateway
from paygo.models import Account, Payment, PaymentStatus, row_id
from paygo.payments import tasks
from tests import factories
from tests.conftest import PG_ADMIN


def _backend_pid(database: Database) -> int:
    with database.engine.connect() as conn:
        pid: int = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _terminate(pid: int) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture
def pg_database(database_url: str) -> Iterator[Database]:
    if not database_url.startswith("postgresql"):
        pytest.skip("server connections: PostgreSQL only")
    database = Database(database_url)
    yield database
    database.dispose()


def test_a_pooled_connection_killed_while_idle_is_replaced_before_use(
    pg_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(pg_database)
    _terminate(first)  # the server restarted, or an idle timeout closed it
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)  # it has idled long enough
    with pg_database.transaction() as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    assert _backend_pid(pg_database) != first


def test_a_connection_in_steady_use_is_not_pinged(
    pg_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    _backend_pid(pg_database)  # one pooled connection, just checked in
    event.listen(
        pg_database.engine, "before_cursor_execute", lambda *args: statements.append(args[2])
    )
    pings: list[DBAPIConnection] = []
    original = pg_database.engine.dialect.do_ping

    def counting_ping(dbapi_connection: DBAPIConnection) -> bool:
        pings.append(dbapi_connection)
        return original(dbapi_connection)

    monkeypatch.setattr(pg_database.engine.dialect, "do_ping", counting_ping)
    with pg_database.transaction() as session:
        session.execute(text("SELECT 2"))
    assert pings == [] and statements == ["SELECT 2"]


@pytest.fixture
def account_and_statements(gateway: Gateway, session: Session) -> Iterator[tuple[int, list[str]]]:
    """An account's id, and every statement the gateway's engine runs from now on."""
    account_id = factories.make_account(session, gateway).id
    session.commit()
    assert account_id is not None
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(gateway.db.engine, "before_cursor_execute", record)
    yield account_id, statements
    event.remove(gateway.db.engine, "before_cursor_execute", record)


def locking(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("SELECT accounts")]


def row_locks(statements: list[str], table: str) -> list[str]:
    """The row locks taken on `table` (PostgreSQL renders them; SQLite has none)."""
    return [s for s in statements if s.startswith(f"SELECT {table}.") and "FOR UPDATE" in s]


def waiting_payment(gateway: Gateway, account_id: int, txn_id: str) -> int:
    with gateway.db.transaction() as tx:
        account = tx.get(Account, account_id)
        assert account is not None
        payment = Payment(
            provider="mpesa",
            provider_txn_id=txn_id,
            amount=15000,
            currency="KES",
            payer="254711000000",
            reference=account.number,
            raw="{}",
        )
        tx.add(payment)
        tx.flush()
        return row_id(payment.id)


def test_crediting_locks_the_payment_the_account_and_the_box_once_per_transaction(
    gateway: Gateway, account_and_statements: tuple[int, list[str]]
) -> None:
    if gateway.db.dialect != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    account_id, statements = account_and_statements
    first = waiting_payment(gateway, account_id, "LOCKS00001")
    waiting_payment(gateway, account_id, "LOCKS00002")
    statements.clear()
    assert tasks.reconcile(gateway, first).status == PaymentStatus.CREDITED
    # The job locks the payment; the ledger locks the account and its box; nothing twice.
    assert [len(row_locks(statements, t)) for t in ("payments", "accounts", "devices")] == [1] * 3
    statements.clear()
    assert tasks.drain(gateway, seconds=60) == (1, False)  # a new transaction locks anew
    claims = row_locks(statements, "payments")
    # A drain claims the payment (SKIP LOCKED) and reconciles that same row, then finds none.
    assert len(claims) == 2 and all("SKIP LOCKED" in s for s in claims)
    assert [len(row_locks(statements, t)) for t in ("accounts", "devices")] == [1, 1]


def test_a_row_is_locked_by_each_call_and_again_in_the_next_transaction(
    gateway: Gateway, account_and_statements: tuple[int, list[str]]
) -> None:
    account_id, statements = account_and_statements
    with gateway.db.transaction() as tx:
        assert lock_row(tx, Account, account_id) is not None
    assert len(locking(statements)) == 1
    with gateway.db.transaction() as tx:  # a new transaction holds no lock yet
        assert lock_row(tx, Account, account_id) is not None
        assert lock_row(tx, Account, 10**9) is None
    assert len(locking(statements)) == 3


def test_a_savepoint_rolled_back_forgets_the_locks_so_rows_are_locked_again(
    gateway: Gateway, account_and_statements: tuple[int, list[str]]
) -> None:
    account_id, statements = account_and_statements
    with gateway.db.transaction() as tx:
        try:
            with tx.begin_nested():
                lock_row(tx, Account, account_id)
                raise RuntimeError("the savepoint rolls back")
        except RuntimeError:
            pass
        # PostgreSQL released the lock with the savepoint: it must be taken again.
        assert lock_row(tx, Account, account_id) is not None
    assert len(locking(statements)) == 2
    assert all("FOR UPDATE" in s for s in locking(statements)) or gateway.db.dialect == "sqlite"
