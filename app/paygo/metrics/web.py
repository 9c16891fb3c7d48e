"""The OpenPAYGO Metrics routes at /openpaygo/metrics/: boxes post data, operators read it.

`POST dd` (or `device_data`) from a box, authenticated by its own signature; `POST
data_format` and `GET dd` with an operator's API key. Answers are JSON; errors are JSON
`{"error", "message"}` with a 4xx status (503 when the database is away: retry).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from paygo.gateway import current_gateway
from paygo.metrics import access, service
from paygo.metrics.protocol import Refused, Replayed
from paygo.models import utcnow

log = logging.getLogger(__name__)
bp = Blueprint("openpaygo_metrics", __name__, url_prefix="/openpaygo/metrics")

#: The standard's largest device request object.
MAX_DEVICE_REQUEST = 4096 * 1024
MAX_DATA_FORMAT = 64 * 1024


@bp.post("/dd")
@bp.post("/device_data")
def post_device_data() -> ResponseReturnValue:
    """A box's data in; its codes, active time and settings out (201, as the standard says)."""
    gateway = current_gateway()
    body = _body(MAX_DEVICE_REQUEST)
    try:
        answer = service.receive_device_data(
            db=gateway.db,
            keys=gateway.keys,
            body=body,
            now=utcnow(),
            formats=gateway.metrics.formats,
        )
    except (Refused, Replayed) as exc:
        service.audit_refusal(
            db=gateway.db,
            gate=gateway.metrics.refusals,
            error=exc,
            remote_addr=request.remote_addr,
            now=utcnow(),
        )
        raise
    except SQLAlchemyError:
        log.exception("Metrics device data not handled")
        return jsonify(error="unavailable", message="not stored; please retry"), 503
    return _compact(answer, 201)


@bp.post("/data_format")
def post_data_format() -> ResponseReturnValue:
    """Register a data format (an operator's API key); answer its id."""
    gateway = current_gateway()
    with gateway.db.session() as session:
        key = access.authorize(
            session=session, header=request.headers.get("Authorization"), roles=access.WRITERS
        )
    ident = service.register_data_format(
        db=gateway.db, body=_body(MAX_DATA_FORMAT), actor=f"apikey:{key.id}", now=utcnow()
    )
    return _compact({"id": ident}, 201)


@bp.get("/dd")
@bp.get("/device_data")
def get_device_data() -> ResponseReturnValue:
    """A box's stored data (an operator's API key), in the standard's simple form."""
    with current_gateway().db.session() as session:
        access.authorize(
            session=session, header=request.headers.get("Authorization"), roles=access.READERS
        )
        serial = request.args.get("serial_number", "").strip()
        if not serial:
            abort(400, description="serial_number is required")
        start, end = service.parse_range(
            request.args.get("from_datetime"), request.args.get("to_datetime"), now=utcnow()
        )
        return _compact(service.device_data(session=session, serial=serial, start=start, end=end))


def _body(limit: int) -> bytes:
    """The request body, refused when it is not JSON or longer than `limit`."""
    if request.mimetype and "json" not in request.mimetype:
        # The standard also allows CBOR; this server speaks JSON only.
        abort(415, description="send JSON (content-type: application/json)")
    request.max_content_length = limit
    return request.get_data(cache=False)


def _compact(body: dict[str, Any], status: int = 200) -> Response:
    # Keys in the order they were built: a box may check the signature on its own parse.
    text = json.dumps(body, separators=(",", ":"))
    return Response(text, status=status, mimetype="application/json")
