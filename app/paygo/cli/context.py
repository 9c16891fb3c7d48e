"""The gateway and the app a command works on.

Run as `paygo`, a command builds its gateway from the environment, without the web app
(Flask is not even imported). Run by Flask (`flask --app wsgi`, a Flask test runner) or
given an app (tests, `paygo dev`), it uses that app's gateway.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from paygo.cli import State
from paygo.cli.output import fail

if TYPE_CHECKING:
    from flask import Flask

    from paygo.gateway import Gateway

_STATE = "paygo.state"


def current_gateway() -> Gateway:
    """The gateway of this command: the running app's, or one built for it.

    It is made current for the rest of the command, so the jobs it runs inline (without
    Redis) find it as they would inside the app.
    """
    from paygo.gateway import forget_gateway, use_gateway

    flask = sys.modules.get("flask")
    if flask is not None and flask.has_app_context():
        gateway: Gateway = flask.current_app.extensions["paygo"]
        return gateway
    state = _state()
    if state.app is not None:
        gateway = state.app.extensions["paygo"]
    else:
        if state.built is None:
            state.built = _build()
        gateway = state.built
    token = use_gateway(gateway)
    click.get_current_context().find_root().call_on_close(lambda: forget_gateway(token))
    return gateway


def current_app() -> Flask:
    """The Flask app of this command (built from the environment when none runs)."""
    flask = sys.modules.get("flask")
    if flask is not None and flask.has_app_context():
        app: Flask = flask.current_app._get_current_object()
        return app
    state = _state()
    if state.app is None:
        state.app = _create_app()
    return state.app


def _state() -> State:
    ctx = click.get_current_context()
    state = ctx.find_object(State)
    if state is None:  # run by a Flask CLI: its ScriptInfo knows the app
        root = ctx.find_root()
        state = root.meta.get(_STATE)
        if state is None:
            state = root.meta[_STATE] = State(app=_script_app(ctx))
    return state


def _script_app(ctx: click.Context) -> Flask | None:
    if "flask" not in sys.modules:
        return None
    from flask.cli import ScriptInfo

    info = ctx.find_object(ScriptInfo)
    return info.load_app() if info is not None else None


def _build() -> Gateway:
    from paygo.errors import ConfigurationError
    from paygo.gateway import build_gateway
    from paygo.settings import load_settings

    try:
        settings = load_settings()
    except ConfigurationError as exc:
        # A one-line reason naming the setting(s), not a traceback.
        fail(exc.message)
    logging.basicConfig(level=settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return build_gateway(settings)


def _create_app() -> Flask:
    from paygo import create_app
    from paygo.errors import ConfigurationError, FlowError

    try:
        return create_app()
    except (ConfigurationError, FlowError) as exc:
        fail(exc.message)
