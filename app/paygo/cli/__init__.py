"""The `paygo` command line, built on Flask's CLI (so `flask --app wsgi ...` works too)."""

from __future__ import annotations

from flask import Flask
from flask.cli import FlaskGroup


def register(app: Flask) -> None:
    """Attach every command group to the app."""
    from paygo.cli import (
        accounts,
        apikeys,
        db,
        demo,
        devices,
        flows,
        messages,
        payments,
        plans,
        reminders,
        tokens,
        worker,
    )

    for module in (
        db,
        plans,
        devices,
        accounts,
        tokens,
        payments,
        messages,
        apikeys,
        demo,
        worker,
        flows,
        reminders,
    ):
        for command in module.commands:
            app.cli.add_command(command)


def _create_app() -> Flask:
    import click

    from paygo import create_app
    from paygo.errors import ConfigurationError, FlowError

    try:
        return create_app()
    except (ConfigurationError, FlowError) as exc:
        # A one-line reason naming the setting, not a traceback.
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from None


def main() -> None:
    """Entry point of the `paygo` console script."""
    cli = FlaskGroup(
        create_app=_create_app, add_default_commands=True, help="Operate a PAYG solar gateway."
    )
    # Built in, not from the app: it must work while a broken flow stops the app.
    from paygo.cli.flows import flows_group

    cli.add_command(flows_group)
    cli.main(prog_name="paygo")
