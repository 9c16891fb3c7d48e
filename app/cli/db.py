"""`paygo db`: schema migrations."""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from flask.cli import with_appcontext

from app.cli.output import emit, json_option
from app.extensions import current_gateway

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointed at our migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = url
    return config


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@json_option
@with_appcontext
def upgrade(revision: str, as_json: bool) -> None:
    """Apply migrations up to REVISION."""
    gateway = current_gateway()
    command.upgrade(alembic_config(gateway.settings.database_url), revision)
    emit(as_json, {"upgraded_to": revision}, f"database is at {revision}")


commands = [db_group]
