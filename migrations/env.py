"""Alembic environment: our SQLModel metadata, the URL from `paygo db upgrade` or settings."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import paygo.models  # noqa: F401 - registers the tables on SQLModel.metadata
from paygo.db import Database
from paygo.models import UTCDateTime

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our column types as the plain SQLAlchemy types they store."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    # AutoString is a VARCHAR; naming it keeps migrations free of SQLModel internals.
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.attributes.get("database_url")
    if url is None:
        from paygo.settings import load_settings

        url = load_settings().database_url
    database = Database(url)
    try:
        with database.engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
    finally:
        database.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; use `paygo db upgrade`")
run_migrations_online()
