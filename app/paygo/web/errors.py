"""One place that turns errors into replies: JSON here; channels render their own."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from paygo.errors import GatewayError

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Register JSON handlers for gateway errors, HTTP errors and anything unexpected."""

    @app.errorhandler(GatewayError)
    def _gateway_error(exc: GatewayError) -> ResponseReturnValue:
        return jsonify(exc.to_dict()), exc.status_code

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        return jsonify(
            error=(exc.name or "error").lower().replace(" ", "_"), message=exc.description
        ), code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return jsonify(error="internal", message="internal error; it has been logged"), 500
