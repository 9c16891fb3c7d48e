"""The gateway's shared services, built in init_app and kept in app.extensions.

`build_gateway` needs no Flask: the `paygo` command line builds one for its command
without loading the web app (and Flask, Redis and rq are imported only when used).
"""

from __future__ import annotations

import sys
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import configure_mappers

from paygo.crypto import KeyBox
from paygo.db import Database
from paygo.jobs import JobQueue
from paygo.settings import Settings

if TYPE_CHECKING:
    from flask import Flask
    from redis import Redis


@dataclass
class Gateway:
    """Everything a view, a job or a command needs, built once per app."""

    settings: Settings
    db: Database
    keys: KeyBox
    jobs: JobQueue
    redis: Redis | None = None
    services: dict[str, Any] = field(default_factory=dict)


def build_gateway(settings: Settings) -> Gateway:
    """Build the engine, Redis client, queue and key box for these settings."""
    # Instrument every model now, not on the first query: code that builds bare instances
    # (the USSD session snapshot) must find the attribute implementations in place even
    # when it runs before this process has queried anything.
    configure_mappers()
    redis = None
    if settings.redis_url:
        from redis import Redis

        redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    return Gateway(
        settings=settings,
        db=Database(settings.database_url),
        keys=KeyBox(settings.master_key),
        jobs=JobQueue(redis),
        redis=redis,
    )


def init_app(app: Flask, settings: Settings) -> Gateway:
    """Build the gateway for this app and keep it in app.extensions."""
    gateway = app.extensions["paygo"] = build_gateway(settings)
    return gateway


#: The gateway of a `paygo` command, which runs without a Flask app context: jobs it runs
#: inline (no Redis) find it here, as they find the app's inside one.
_COMMAND_GATEWAY: ContextVar[Gateway | None] = ContextVar("paygo_gateway", default=None)


def use_gateway(gateway: Gateway) -> Token[Gateway | None]:
    """Make `gateway` current outside any app context; reset it with the token returned."""
    return _COMMAND_GATEWAY.set(gateway)


def forget_gateway(token: Token[Gateway | None]) -> None:
    """Undo `use_gateway`."""
    _COMMAND_GATEWAY.reset(token)


def current_gateway() -> Gateway:
    """The gateway of the current Flask app, or of the running `paygo` command."""
    flask = sys.modules.get("flask")
    if flask is not None and flask.has_app_context():
        gateway: Gateway = flask.current_app.extensions["paygo"]
        return gateway
    found = _COMMAND_GATEWAY.get()
    if found is None:
        raise RuntimeError("no gateway: outside a Flask app context and a paygo command")
    return found
