"""`paygo dev`: Flask's development server, shell and route list, on the gateway's app."""

from __future__ import annotations

import click
from flask.cli import ScriptInfo, routes_command, run_command, shell_command

from paygo.cli.context import current_app


@click.group("dev")
@click.pass_context
def dev_group(ctx: click.Context) -> None:
    """Development: Flask's server, shell and routes."""
    # Flask's commands find the app through a ScriptInfo; ours builds it from the settings.
    ctx.obj = ScriptInfo(create_app=current_app)


dev_group.add_command(run_command)
dev_group.add_command(shell_command)
dev_group.add_command(routes_command)
