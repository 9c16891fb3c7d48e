"""Payment callbacks: check the path token, store the payment, acknowledge, reconcile later.

`/payments/<provider>/<token>[/<event>]` for every provider plug-in. The payment is
committed before the acknowledgement goes out and the reconciliation job is enqueued, so
a crash at any point leaves either nothing (the provider retries) or a stored payment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from paygo import faults
from paygo.crypto import same
from paygo.errors import GatewayError
from paygo.gateway import current_gateway
from paygo.models import PaymentStatus, utcnow
from paygo.payments import intake, providers
from paygo.payments.matching import accepts_reference
from paygo.payments.notice import PaymentNotice, ValidationQuery
from paygo.payments.providers import Provider, Reply
from paygo.payments.tasks import payment_stored

log = logging.getLogger(__name__)
bp = Blueprint("payments", __name__, url_prefix="/payments")


@bp.route("/<slug>/<token>", methods=["GET", "POST", "PUT"], defaults={"event": ""})
@bp.route("/<slug>/<token>/<event>", methods=["GET", "POST", "PUT"])
def callback(slug: str, token: str, event: str) -> ResponseReturnValue:
    """Receive one provider callback and answer in the provider's own format."""
    provider = providers.get(slug)
    if provider is None or event not in provider.events:
        abort(404)
    refused = guard(provider, event, token)
    if refused is not None:
        return refused
    try:
        body = request.get_data()
    except RequestEntityTooLarge:
        return render(provider.error(event, 413, "the body is too large"))
    try:
        parsed = provider.read(event, body, current_gateway().settings)
    except GatewayError as exc:
        if exc.status_code == 403:
            return refuse(provider, event, exc.message)
        return unreadable(provider, event, exc.message, body)
    try:
        if isinstance(parsed, ValidationQuery):
            return validate(provider, parsed)
        receive(parsed, body.decode("utf-8", errors="replace"))
    except SQLAlchemyError:  # the database is away: a provider retries a non-2xx reply
        log.exception("%s %s callback not handled", slug, event)
        return render(provider.error(event, 503, "not stored; please retry"))
    return render(provider.ack(event))


def guard(provider: Provider, event: str, token: str) -> ResponseReturnValue | None:
    """Refuse an unconfigured provider, a wrong method or a wrong path token."""
    expected = provider.path_token(current_gateway().settings)
    if expected is None:
        return render(provider.error(event, 404, "this provider is not configured"))
    if request.method not in provider.methods:
        return render(provider.error(event, 405, f"{request.method} is not accepted here"))
    if not same(token, expected):
        return refuse(provider, event, "wrong path token")
    return None


def receive(notice: PaymentNotice, raw: str) -> None:
    """Commit the payment, then see that it will be reconciled."""
    gateway = current_gateway()
    stored = intake.store_callback(db=gateway.db, notice=notice, raw=raw, now=utcnow())
    faults.point("callback_stored")
    if stored is not None and stored.status == PaymentStatus.RECEIVED:
        payment_stored(gateway, stored.payment_id)


def validate(provider: Provider, query: ValidationQuery) -> ResponseReturnValue:
    """Answer a validation request: refuse only a reference that is certainly wrong."""
    gateway = current_gateway()
    if not provider.validates(gateway.settings):
        return render(provider.validation_reply(True))
    with gateway.db.session() as session:
        accepted = accepts_reference(session=session, reference=query.reference)
    return render(provider.validation_reply(accepted))


def refuse(provider: Provider, event: str, reason: str) -> ResponseReturnValue:
    """403 for a callback that failed authentication; only an audit line is kept."""
    log.warning("%s callback refused from %s: %s", provider.slug, request.remote_addr, reason)
    _audit(
        intake.record_refusal,
        provider=provider.name,
        event=event,
        reason=reason,
        remote_addr=request.remote_addr,
    )
    return render(provider.error(event, 403, "forbidden"))


def unreadable(provider: Provider, event: str, reason: str, body: bytes) -> ResponseReturnValue:
    """400 for an authenticated callback we cannot read; its body is kept for an operator."""
    log.warning("%s %s callback refused: %s", provider.slug, event, reason)
    _audit(
        intake.record_unreadable,
        provider=provider.name,
        event=event,
        reason=reason,
        raw=body.decode("utf-8", errors="replace"),
    )
    return render(provider.error(event, 400, reason))


def _audit(write: Callable[..., None], **detail: Any) -> None:
    # The reply is the same whether or not the audit line could be written.
    try:
        with current_gateway().db.transaction() as session:
            write(session=session, **detail)
    except SQLAlchemyError:
        log.exception("audit line for a refused callback not written: %s", detail["reason"])


def render(reply: Reply) -> ResponseReturnValue:
    """A provider reply as a Flask response."""
    if reply.body is None:
        return Response(status=reply.status)
    return jsonify(reply.body), reply.status
