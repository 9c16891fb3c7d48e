"""The `paygo` command line.

Start-up is kept fast: `paygo --help` imports Click and this module only, and each
command's module (with what it needs: SQLModel, the settings) is imported when that
command runs. A command builds the gateway it works on from the environment (and a `.env`
file) without the web app; Flask is loaded only by `paygo dev` and `paygo worker`.

The same commands are registered on the Flask app, so `flask --app wsgi ...` runs them too.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from flask import Flask

#: Every command: name -> where it lives and its one line for `paygo --help` (a test
#: keeps these lines equal to the commands' own).
COMMANDS: dict[str, tuple[str, str]] = {
    "accounts": ("paygo.cli.accounts:accounts_group", "Find, open and show accounts."),
    "customers": ("paygo.cli.customers:customers_group", "Show and correct customers."),
    "payments": (
        "paygo.cli.payments:payments_group",
        "Payments: record cash, list, suspense queue, assign, reverse.",
    ),
    "tokens": ("paygo.cli.tokens:tokens_group", "Issue and list device tokens."),
    "tickets": (
        "paygo.cli.tickets:tickets_group",
        "Customer tickets: list, show, assign, comment, close.",
    ),
    "devices": (
        "paygo.cli.devices:devices_group",
        "Import, export and list devices; move connected boxes to another server.",
    ),
    "plans": ("paygo.cli.plans:plans_group", "Create, list, update and retire payment plans."),
    "messages": ("paygo.cli.messages:messages_group", "Inspect and operate the outbound messages."),
    "audit": ("paygo.cli.audit:audit_group", "Read the audit log of operator actions."),
    "lockouts": (
        "paygo.cli.lockouts:lockouts_group",
        "Phones locked out of account look-ups, and clearing them.",
    ),
    "apikeys": ("paygo.cli.apikeys:apikeys_group", "Create operator API keys."),
    "flows": (
        "paygo.cli.flows:flows_group",
        "Check the USSD menus, SMS replies (flows/*.yaml) and texts (flows/texts.yaml).",
    ),
    "db": ("paygo.cli.db:db_group", "Manage the database schema."),
    "demo": ("paygo.cli.demo:demo_command", "Load a demo plan, devices, customers and accounts."),
    "reminders": (
        "paygo.cli.reminders:reminders_group",
        "Credit expiry and out-of-light reminders.",
    ),
    "worker": ("paygo.cli.worker:worker", "Run background jobs from Redis (needs REDIS_URL)."),
    "dev": ("paygo.cli.dev:dev_group", "Development: Flask's server, shell and routes."),
}


def load_command(name: str) -> click.Command:
    """Import the command called `name`."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    command: click.Command = getattr(importlib.import_module(module), attribute)
    return command


class Paygo(click.Group):
    """The `paygo` group: a command's module is imported only when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From the table, so the help imports no command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])


@dataclass
class State:
    """What the commands of one `paygo` run share: the app, when one is given (tests,
    `paygo dev`), else a gateway built from the environment on first use."""

    app: Flask | None = None
    built: Any = None


@click.group(cls=Paygo)
@click.version_option(package_name="paygo-gateway", prog_name="paygo")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Operate a PAYG solar gateway.

    Settings come from the environment and a .env file in this folder or above it (see
    .env.example). Amounts are in major units (1500 or 1,500.50); account numbers may be
    typed with spaces or dashes. Every command takes --help, and lists take --json,
    --limit and --cursor.
    """
    state = ctx.ensure_object(State)
    if state.app is None:
        from paygo.envfile import read_dotenv

        read_dotenv()


def register(app: Flask) -> None:
    """Attach every command group to the app (for `flask --app wsgi ...`)."""
    for name in COMMANDS:
        if name != "dev":  # Flask's own run, shell and routes are there already
            app.cli.add_command(load_command(name))


def main() -> None:
    """Entry point of the `paygo` console script."""
    cli.main(prog_name="paygo")
