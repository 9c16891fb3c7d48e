"""Wire the conversation channels into the app: load the flows, register the blueprints.

Loading validates every flow, so an app with an invalid flow refuses to start and the
FlowError says which file, state and language.
"""

from __future__ import annotations

from functools import partial

from flask import Flask

from paygo.conversations import service
from paygo.extensions import current_gateway
from paygo.messaging import sending


def init_app(app: Flask) -> None:
    """Load and validate the flows, then register the USSD endpoints (SMS: paygo.web.sms)."""
    from paygo.conversations import ussd

    gateway = app.extensions["paygo"]
    gateway.services["conversations"] = service.build(
        settings=gateway.settings,
        db=gateway.db,
        redis=gateway.redis,
        send_committed=partial(sending.send_committed, gateway),
    )
    app.register_blueprint(ussd.bp)


def current_conversations() -> service.Conversations:
    """The conversation service of the current app."""
    conversations: service.Conversations = current_gateway().services["conversations"]
    return conversations
