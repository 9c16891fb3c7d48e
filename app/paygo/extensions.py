"""The gateway's shared services, built in init_app and kept in app.extensions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from redis import Redis
from sqlalchemy.orm import configure_mappers

from paygo.crypto import KeyBox
from paygo.db import Database
from paygo.jobs import JobQueue
from paygo.settings import Settings


@dataclass
class Gateway:
    """Everything a view, a job or a command needs, built once per app."""

    settings: Settings
    db: Database
    keys: KeyBox
    jobs: JobQueue
    redis: Redis | None = None
    services: dict[str, Any] = field(default_factory=dict)


def init_app(app: Flask, settings: Settings) -> Gateway:
    """Build the engine, Redis client, queue and key box for this app."""
    # Instrument every model now, not on the first query: code that builds bare instances
    # (the USSD session snapshot) must find the attribute implementations in place even
    # when it runs before this process has queried anything.
    configure_mappers()
    redis = (
        Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        if settings.redis_url
        else None
    )
    gateway = Gateway(
        settings=settings,
        db=Database(settings.database_url),
        keys=KeyBox(settings.master_key),
        jobs=JobQueue(redis),
        redis=redis,
    )
    app.extensions["paygo"] = gateway
    return gateway


def current_gateway() -> Gateway:
    """The gateway of the current Flask app."""
    gateway: Gateway = current_app.extensions["paygo"]
    return gateway
