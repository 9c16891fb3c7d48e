"""`paygo reminders`: write the credit reminders due now (the worker runs this hourly)."""

from __future__ import annotations

import click

from paygo.cli.context import current_gateway
from paygo.cli.output import emit, json_option
from paygo.messaging import reminders


@click.group("reminders")
def reminders_group() -> None:
    """Credit expiry and out-of-light reminders."""


@reminders_group.command("run")
@json_option
def run(as_json: bool) -> None:
    """Write the reminders due now; each is sent once, after quiet hours."""
    written = reminders.write_due(current_gateway())
    emit(as_json, {"written": written}, f"{len(written)} reminder(s) written")


commands = [reminders_group]
