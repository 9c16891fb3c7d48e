"""Inbound SMS commands from Africa's Talking and Twilio; replies go out through the outbox.

Delivery reports are the messaging module's (`/sms/africastalking/delivery`,
`/sms/twilio/status`); these endpoints only take commands.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.datastructures import MultiDict

from paygo.conversations import service
from paygo.conversations.web import current_conversations
from paygo.extensions import current_gateway
from paygo.phones import normalise
from paygo.web.forms import required_field

bp = Blueprint("sms_commands", __name__)


@bp.post("/sms/africastalking")
def africastalking() -> ResponseReturnValue:
    """Take one inbound SMS and queue the reply."""
    form = request.form
    answer = service.answer_sms(
        current_conversations(),
        phone=_phone(form, "from"),
        text=form.get("text", ""),
        provider="africastalking",
        provider_message_id=required_field(form, "id", 100),
    )
    return jsonify(status="repeated" if answer.repeated else "queued", message_id=answer.message_id)


@bp.post("/sms/twilio")
def twilio() -> ResponseReturnValue:
    """Take one signed inbound SMS; the reply goes back as TwiML (once per MessageSid)."""
    if not _signed_by_twilio():
        abort(403, description="missing or wrong X-Twilio-Signature")
    form = request.form
    answer = service.answer_sms(
        current_conversations(),
        phone=_phone(form, "From"),
        text=form.get("Body", ""),
        provider="twilio",
        provider_message_id=required_field(form, "MessageSid", 100),
        sent_by_provider=True,
    )
    twiml = MessagingResponse()
    if not answer.repeated:  # a replay must not make Twilio send the reply again
        twiml.message(answer.text)
    return Response(str(twiml), mimetype="application/xml")


def _signed_by_twilio() -> bool:
    token = current_gateway().settings.twilio_auth_token
    if not token:
        return False
    # Behind a TLS proxy Flask sees http://: sign against the URL Twilio called.
    url = current_gateway().settings.public_base_url.rstrip("/") + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    signature = request.headers.get("X-Twilio-Signature", "")
    return bool(RequestValidator(token).validate(url, request.form, signature))


def _phone(form: MultiDict[str, str], name: str) -> str:
    return normalise(required_field(form, name, 40), current_gateway().settings.default_country)
