"""`paygo apikeys`: keys for the operator API (only their hash is stored)."""

from __future__ import annotations

import secrets

import click

from paygo import audit
from paygo.cli.context import current_gateway
from paygo.cli.output import emit, handles_errors, json_option
from paygo.crypto import hash_api_key
from paygo.models import ApiKey

ROLES = ("admin", "operator", "viewer")


@click.group("apikeys")
def apikeys_group() -> None:
    """Create operator API keys."""


@apikeys_group.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", default="", help="Who or what the key is for.")
@json_option
@handles_errors
def create(role: str, name: str, as_json: bool) -> None:
    """Create a key and print it once."""
    raw = "pg_" + secrets.token_urlsafe(32)
    with current_gateway().db.transaction() as session:
        key = ApiKey(name=name, role=role, prefix=raw[:10], key_hash=hash_api_key(raw))
        session.add(key)
        session.flush()
        audit.record(
            session=session,
            actor="cli",
            action="apikey.create",
            target_type="api_key",
            target_id=key.id,
            role=role,
            name=name,
        )
        key_id = key.id
    emit(
        as_json,
        {"id": key_id, "role": role, "key": raw},
        f"api key #{key_id} ({role}); shown once, store it now:",
        raw,
    )


commands = [apikeys_group]
