"""Africa's Talking USSD: one form POST per hop, a `text/plain` reply `CON ...` or `END ...`.

Nothing here may answer with an HTTP error: the network would show the customer a generic
failure. Bad requests get an `END` apology (logged), like failures inside the engine.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from paygo.conversations import service
from paygo.conversations.sessions import record_session_end
from paygo.errors import InvalidInput
from paygo.gateway import current_gateway
from paygo.phones import normalise
from paygo.web.forms import required_field

log = logging.getLogger(__name__)
bp = Blueprint("ussd", __name__)
#: Every hop of a session sends the same number: parse it once per worker, not per hop.
_normalise = lru_cache(maxsize=4096)(normalise)
#: Africa's Talking's own limit on a USSD reply.
MAX_REPLY = 182
MAX_TEXT = 1000
STATUSES = ("Success", "Incomplete", "Failed")


@bp.post("/ussd/africastalking")
def africastalking() -> ResponseReturnValue:
    """Answer one hop of a session."""
    gateway = current_gateway()
    conv = gateway.conversations
    try:
        hop = _hop(request.form, gateway.settings.default_country)
    except (InvalidInput, HTTPException) as exc:
        log.warning("USSD hop refused: %s", getattr(exc, "message", exc))
        return _plain("END " + conv.sorry(service.USSD_FLOW, None))
    return _plain(service.answer_hop(conv, hop))


def _hop(form: MultiDict[str, str], country: str) -> service.UssdHop:
    session_id = required_field(form, "sessionId", 100)
    text = form.get("text", "")
    if len(text) > MAX_TEXT:
        raise InvalidInput("text is too long")
    return service.UssdHop(
        session_id=session_id,
        text=text,
        phone=_normalise(required_field(form, "phoneNumber", 40), country),
        service_code=form.get("serviceCode", "")[:40],
    )


def _plain(body: str) -> Response:
    if len(body) > MAX_REPLY:  # validation makes this unreachable; the network forbids it
        log.error("USSD reply of %d characters cut: %r", len(body), body[:60])
        body = body[:MAX_REPLY]
    return Response(body, mimetype="text/plain")


@bp.post("/ussd/africastalking/events")
def events() -> ResponseReturnValue:
    """Store an end-of-session notification with its session."""
    gateway = current_gateway()
    form = request.form
    status = required_field(form, "status", 20)
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", status=status)
    with gateway.db.transaction() as session:
        row = record_session_end(
            session=session,
            session_id=required_field(form, "sessionId", 100),
            status=status,
            phone=normalise(
                required_field(form, "phoneNumber", 40), gateway.settings.default_country
            ),
            service_code=form.get("serviceCode", "")[:40],
            hops=_count(form, "hopsCount"),
            duration_ms=_count(form, "durationInMillis"),
            error=form.get("errorMessage") or None,
            now=gateway.conversations.clock(),
        )
        stored = {"session_id": row.session_id, "status": row.status, "hops": row.hops}
    return jsonify(stored=stored)


def _count(form: MultiDict[str, str], name: str) -> int:
    value = form.get(name, "0").strip() or "0"
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise InvalidInput(f"{name} must be a whole number", field=name)
    return int(value)
