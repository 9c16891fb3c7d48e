"""SMS web hooks of every provider plug-in: inbound messages and delivery reports.

- `POST /sms/<provider>`: inbound messages, answered by the SMS commands
  (conversations.service.answer_sms); the reply waits in the outbox, or goes back in the
  HTTP answer for providers that send it themselves (Twilio's TwiML).
- `POST /sms/<provider>/<report route>`: delivery reports (`/sms/africastalking/delivery`,
  `/sms/twilio/status?m=17`), recorded against our outbox.
- A provider authenticated by a secret path segment takes it first:
  `/sms/infobip/<token>` and `/sms/infobip/<token>/delivery`.

The provider checks the request (signature or path token) before anything is read;
every refusal is a GatewayError, rendered as JSON by paygo.web.errors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from paygo.conversations import service
from paygo.errors import Forbidden, NotFound
from paygo.gateway import current_gateway
from paygo.messaging import reports
from paygo.messaging.providers import REGISTRY, Callback, Reply, SmsProvider, StatusReport

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")


@bp.post("/<name>", defaults={"rest": ""})
@bp.post("/<name>/<path:rest>")
def callback(name: str, rest: str) -> ResponseReturnValue:
    """Take one inbound message or delivery report, and answer in the provider's format."""
    provider = _provider(name)
    token, event = _route(provider, rest)
    hook = _callback(token, event)
    try:
        provider.verify(hook)
    except Forbidden as exc:
        log.warning("%s web hook refused from %s: %s", name, request.remote_addr, exc.message)
        raise
    if event:
        return _reports(provider, hook)
    return _inbound(provider, hook)


def _provider(name: str) -> SmsProvider:
    if name not in REGISTRY:
        raise NotFound(f"no SMS provider {name[:40]!r}")
    return current_gateway().sms.get(name)


def _route(provider: SmsProvider, rest: str) -> tuple[str | None, str]:
    """Split what follows /sms/<provider>/ into the path token and the report route."""
    parts = rest.split("/") if rest else []
    token = parts.pop(0) if provider.token_setting and parts else None
    event = "/".join(parts)
    if event not in ("", provider.report_route):
        raise NotFound(f"{provider.name} has no web hook {event[:40]!r}")
    return token, event


def _callback(token: str | None, event: str) -> Callback:
    # The form first: for a form post it reads the body (413 when too large), and for a
    # JSON post it reads nothing, leaving the body to get_data.
    form = request.form
    return Callback(
        url=_public_url(),
        event=event,
        token=token,
        headers={key.lower(): value for key, value in request.headers.items()},
        form=form,
        args=request.args,
        body=request.get_data(),
    )


def _public_url() -> str:
    """The URL the provider called: behind a TLS proxy Flask sees http://."""
    url = current_gateway().settings.public_base_url.rstrip("/") + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return url


def _inbound(provider: SmsProvider, hook: Callback) -> ResponseReturnValue:
    messages = provider.parse_inbound(hook)
    conversations = current_gateway().conversations
    answers = [
        service.answer_sms(
            conversations,
            phone=sms.phone,
            text=sms.text,
            provider=provider.name,
            provider_message_id=sms.provider_message_id,
            sent_by_provider=provider.replies_inline,
        )
        for sms in messages
    ]
    return _render(provider.inbound_reply(answers))


def _reports(provider: SmsProvider, hook: Callback) -> ResponseReturnValue:
    gateway = current_gateway()
    parsed: Sequence[StatusReport] = provider.parse_reports(hook)
    return _render(provider.report_reply([(r, reports.record(gateway, r)) for r in parsed]))


def _render(reply: Reply) -> ResponseReturnValue:
    if reply.body is None:
        return Response(status=reply.status)
    if isinstance(reply.body, str):
        return Response(reply.body, status=reply.status, mimetype=reply.mimetype)
    return jsonify(reply.body), reply.status
