"""`paygo db`: schema migrations."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from paygo.cli.context import current_gateway
from paygo.cli.output import emit, fail, handles_errors, json_option

MIGRATIONS = Path(str(files("paygo") / "migrations"))


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
@handles_errors
def upgrade(revision: str, as_json: bool) -> None:
    """Apply migrations up to REVISION."""
    url = current_gateway().settings.database_url
    config = alembic_config(url)
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        target = ScriptDirectory.from_config(config).as_revision_number(revision)
        command.upgrade(config, revision)
    except CommandError as exc:
        fail(f"cannot upgrade to {revision!r}: {exc}")
    except DBAPIError as exc:
        fail(
            f"cannot migrate {shown}: {str(exc.orig).strip().splitlines()[0]}; "
            "check DATABASE_URL and that the database server answers"
        )
    emit(as_json, {"upgraded_to": target, "database": shown}, f"database {shown} is at {target}")


commands = [db_group]
