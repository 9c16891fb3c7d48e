"""Delivery report endpoints: Africa's Talking reports and Twilio status callbacks.

Set Africa's Talking's SMS delivery reports URL (in their dashboard) to
PUBLIC_BASE_URL/sms/africastalking/delivery; Twilio is told the callback URL per message.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator

from paygo.errors import InvalidInput
from paygo.extensions import current_gateway
from paygo.messaging import reports

bp = Blueprint("sms_reports", __name__)


@bp.post("/sms/africastalking/delivery")
def africastalking_delivery() -> ResponseReturnValue:
    """Record an Africa's Talking delivery report."""
    gateway = current_gateway()
    try:
        report = reports.parse_at_delivery(request.form, gateway.settings.default_country)
    except InvalidInput as exc:
        return jsonify(exc.to_dict()), 400
    message = reports.record(gateway, report)
    if message is None:
        # Not one of ours (sent from AT's dashboard, or long purged): nothing to retry.
        return jsonify(status="ignored"), 200
    return jsonify(status="ok", message_id=message.id, state=message.status), 200


@bp.post("/sms/twilio/status")
def twilio_status() -> ResponseReturnValue:
    """Record a Twilio status callback after checking its signature."""
    gateway = current_gateway()
    token = gateway.settings.twilio_auth_token
    if not token:
        return jsonify(error="not_found", message="Twilio is not configured"), 404
    # Behind a TLS proxy Flask sees http://: sign over the URL Twilio was given.
    url = gateway.settings.public_base_url.rstrip("/") + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    signature = request.headers.get("X-Twilio-Signature", "")  # None makes twilio raise
    if not RequestValidator(token).validate(url, request.form, signature):
        return jsonify(error="forbidden", message="bad or missing X-Twilio-Signature"), 403
    try:
        report = reports.parse_twilio_status(request.form, request.args.get("m"))
    except InvalidInput as exc:
        return jsonify(exc.to_dict()), 400
    reports.record(gateway, report)
    return "", 204
