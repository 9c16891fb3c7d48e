"""The web app's gateway: built in init_app, kept in app.extensions, every part ready.

A `paygo` command builds a gateway of its own (paygo.gateway.build_gateway) and loads
only the parts it uses; the web app builds them all here, so an invalid flow or texts
catalogue stops it from starting, and the first hop or payment pays for nothing.
"""

from __future__ import annotations

from flask import Flask

from paygo import schedule
from paygo.gateway import Gateway, build_gateway
from paygo.settings import Settings


def init_app(app: Flask, settings: Settings) -> Gateway:
    """Build the gateway, load and check its flows and texts, and keep it in the app.

    The FlowError of an invalid flow or text names its file, state and language.
    """
    gateway = build_gateway(settings)
    gateway.load_all()
    app.extensions["paygo"] = gateway
    # Without Redis, a thread in the web process runs the periodic jobs.
    schedule.init_app(app, gateway)
    return gateway
