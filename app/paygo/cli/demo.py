"""`paygo demo`: a small demo data set with freshly generated device keys."""

from __future__ import annotations

import click

from paygo import demo
from paygo.cli.context import current_gateway
from paygo.cli.output import emit, handles_errors, json_option


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when the demo plan exists already.")
@json_option
@handles_errors
def demo_command(if_empty: bool, as_json: bool) -> None:
    """Load a demo plan, devices, customers and accounts."""
    gateway = current_gateway()
    with gateway.db.transaction() as session:
        loaded = demo.load(
            session=session,
            keys=gateway.keys,
            if_empty=if_empty,
            default_country=gateway.settings.default_country,
        )
    if loaded is None:
        emit(as_json, {"loaded": False}, "demo data is there already")
        return
    emit(
        as_json,
        {"loaded": True, "accounts": loaded},
        "demo data loaded; accounts:",
        *(f"  {n}" for n in loaded),
    )


commands = [demo_command]
