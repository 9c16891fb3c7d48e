"""The gateway: everything a view, a job or a command needs, one typed object per app.

`build_gateway` makes one from the settings without Flask: the web app keeps it in
`app.extensions["paygo"]` (paygo.extensions), and a `paygo` command builds its own.
Code running for either finds it with `current_gateway()`. Domain functions take the
parts they use (`db`, `settings`, `sms`...), not the whole gateway, where they can.

The database, the key box and the backplane are made with the gateway; the rest (the
SMS providers, the texts catalogue, the flows, the schedule, the Metrics server's state)
when first used, so a command that only reads the database loads none of it. The web
app builds them all at once (paygo.extensions), which validates the flows and texts.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar, Token
from functools import cached_property, partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only types: the parts are imported when they are built
    from paygo.backplane import Backplane
    from paygo.conversations.service import Conversations
    from paygo.crypto import KeyBox
    from paygo.db import Database
    from paygo.messaging.providers import Providers
    from paygo.metrics.service import MetricsServer
    from paygo.schedule import Schedule
    from paygo.settings import Settings
    from paygo.texts.catalogue import Catalogue


class Gateway:
    """The app's settings, database, key box and backplane; and, built on first use, its
    SMS providers, texts catalogue, schedule, Metrics server state and conversations."""

    def __init__(
        self, *, settings: Settings, db: Database, keys: KeyBox, backplane: Backplane
    ) -> None:
        self.settings = settings
        self.db = db
        self.keys = keys
        #: What the processes share: keys, counters, scored sets, the job queue.
        self.backplane = backplane

    @cached_property
    def sms(self) -> Providers:
        """The SMS providers and the routing table."""
        from paygo.messaging.providers import Providers

        return Providers(self.settings)

    @cached_property
    def texts(self) -> Catalogue:
        """Every SMS the gateway writes on its own: FLOWS_DIR's texts.yaml, else the shipped
        one (FlowError when it is broken)."""
        from paygo.conversations.service import load_texts

        return load_texts(self.settings)

    @cached_property
    def schedule(self) -> Schedule:
        """The periodic jobs, and when each last ran in this process."""
        from paygo import schedule

        return schedule.Schedule(schedule.periodic_jobs(self.settings, self.backplane))

    @cached_property
    def metrics(self) -> MetricsServer:
        """The OpenPAYGO Metrics endpoints' format cache and refusal gate."""
        from paygo.metrics.service import FormatCache, MetricsServer, RefusalGate

        return MetricsServer(formats=FormatCache(), refusals=RefusalGate(self.backplane))

    @cached_property
    def conversations(self) -> Conversations:
        """The flows, loaded and validated, and what a channel needs to hold a conversation."""
        from paygo.conversations import service
        from paygo.messaging.sending import send_committed

        return service.build(
            settings=self.settings,
            db=self.db,
            backplane=self.backplane,
            send_committed=partial(send_committed, self),
        )

    def load_all(self) -> None:
        """Build every part now (the web app does: an invalid flow or text stops it at
        start, and no request pays for loading them)."""
        for part in ("sms", "texts", "schedule", "metrics", "conversations"):
            getattr(self, part)

    def close(self) -> None:
        """Stop the schedule's thread and give back every connection (the app is done)."""
        ticker = self.schedule.ticker if "schedule" in self.__dict__ else None
        if ticker is not None:
            ticker.stop()
        self.backplane.close()
        self.db.dispose()


def build_gateway(settings: Settings) -> Gateway:
    """Make the database, key box and backplane for these settings (Redis, else the
    database); nothing else is loaded until it is used."""
    from sqlalchemy.orm import configure_mappers

    from paygo import backplane
    from paygo.crypto import KeyBox
    from paygo.db import Database

    # Instrument every model now, not on the first query: code that builds bare instances
    # (the USSD session snapshot) must find the attribute implementations in place even
    # when it runs before this process has queried anything.
    configure_mappers()
    db = Database(settings.database_url)
    return Gateway(
        settings=settings,
        db=db,
        keys=KeyBox(settings.master_key),
        backplane=backplane.connect(settings, db),
    )


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
