"""The `paygo` command line, built on Flask's CLI (so `flask --app wsgi ...` works too)."""

from __future__ import annotations

from flask import Flask
from flask.cli import FlaskGroup


def register(app: Flask) -> None:
    """Attach every command group to the app."""
    from app.cli import accounts, apikeys, db, demo, devices, messages, plans, tokens, worker

    for module in (db, plans, devices, accounts, tokens, messages, apikeys, demo, worker):
        for command in module.commands:
            app.cli.add_command(command)


def _create_app() -> Flask:
    from app import create_app

    return create_app()


def main() -> None:
    """Entry point of the `paygo` console script."""
    cli = FlaskGroup(create_app=_create_app, add_default_commands=True,
                     help="Operate a PAYG solar gateway.")
    cli.main(prog_name="paygo")
