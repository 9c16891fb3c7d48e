"""PAYG solar gateway: the Flask application factory.

Importing the package costs nothing: Flask and the settings are imported by
`create_app`, so the `paygo` command line starts without them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from paygo.settings import Settings


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway: settings, then extensions, blueprints, error handlers, commands."""
    from flask import Flask

    from paygo.settings import load_settings

    settings = load_settings(overrides=test_config)
    # The instance folder is the settings' (beside a checkout, or the user's data folder
    # for an installed package), never Flask's guess inside site-packages.
    app = Flask(__name__, instance_path=settings.instance_path)
    app.config.update(
        SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=256 * 1024, PAYGO_SETTINGS=settings
    )
    logging.basicConfig(level=settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    register_extensions(app, settings)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask, settings: Settings) -> None:
    from paygo import extensions

    # The database, backplane, SMS providers, schedule and conversations; loading the flows
    # and texts validates them, so an invalid flow stops the app here.
    extensions.init_app(app, settings)


def register_blueprints(app: Flask) -> None:
    from paygo.metrics import web as metrics
    from paygo.payments import views as payments
    from paygo.web import health, sms, ussd

    app.register_blueprint(health.bp)
    app.register_blueprint(payments.bp)
    # Inbound SMS and delivery reports of every SMS provider plug-in.
    app.register_blueprint(sms.bp)
    app.register_blueprint(ussd.bp)
    app.register_blueprint(metrics.bp)


def register_error_handlers(app: Flask) -> None:
    from paygo.web import errors

    errors.init_app(app)


def register_commands(app: Flask) -> None:
    from paygo.cli import register

    register(app)
