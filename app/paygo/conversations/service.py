"""The conversation service: flows loaded once, then one USSD hop or one SMS at a time.

Channels call `answer_hop` and `answer_sms`; both are Flask-free. A USSD hop never
raises: whatever goes wrong inside becomes an `END` apology in the customer's language
(the network would otherwise show a generic failure), logged with the session id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from paygo.backplane import Backplane
from paygo.conversations.actions import ACTIONS, Context
from paygo.conversations.commands import Keywords, check_keywords
from paygo.conversations.effects import Host, apply_effects
from paygo.conversations.engine import Engine, Reply, Turn
from paygo.conversations.sessions import Lockout, UssdSessions
from paygo.conversations.validation import load_flows
from paygo.db import Database
from paygo.errors import FlowError, GatewayError
from paygo.messaging.outbox import Outgoing, queue_message
from paygo.models import MessageStatus, OutboundMessage, row_id, utcnow
from paygo.settings import Settings
from paygo.texts import check
from paygo.texts.catalogue import TEXTS_FILE, Catalogue

log = logging.getLogger(__name__)
SHIPPED_FLOWS = Path(str(files("paygo") / "flows"))
USSD_FLOW, SMS_FLOW = "ussd", "sms"
#: More inputs than this in one hop is not a person typing.
MAX_INPUTS_PER_HOP = 10


def flows_dir(settings: Settings) -> Path:
    """The folder of flow files: FLOWS_DIR, else the `flows/` shipped with the gateway."""
    return Path(settings.flows_dir) if settings.flows_dir else SHIPPED_FLOWS


def texts_path(settings: Settings) -> Path:
    """The texts catalogue: `texts.yaml` in FLOWS_DIR when it has one, else the shipped one."""
    override = Path(settings.flows_dir) / TEXTS_FILE if settings.flows_dir else None
    return override if override is not None and override.is_file() else SHIPPED_FLOWS / TEXTS_FILE


def load_texts(settings: Settings) -> Catalogue:
    """Read the texts catalogue, measured with this install's values; FlowError when broken."""
    return check.load_texts(texts_path(settings), constants(settings))


def constants(settings: Settings) -> dict[str, str]:
    """Placeholders every screen may use, with the values this install has."""
    return {"distributor": settings.distributor_name, "paybill": settings.paybill_number}


@dataclass
class Conversations:
    """Everything a channel needs to hold a conversation."""

    engine: Engine
    keywords: Keywords
    sessions: UssdSessions
    lockout: Lockout
    db: Database
    settings: Settings
    #: Sends outbox rows once their transaction has committed (messaging.sending).
    send_committed: Callable[[Iterable[Outgoing]], None]
    clock: Callable[[], datetime] = field(default=utcnow)

    def context(self, *, phone: str, channel: str) -> Context:
        """A fresh context for one hop or one message."""
        return Context(
            engine=self.db.autocommit,
            settings=self.settings,
            lockout=self.lockout,
            phone=phone,
            now=self.clock(),
            channel=channel,
        )

    def applied(self, ctx: Context, turn: Turn) -> Turn:
        """Apply what one engine call decided, in the hop's transaction; finish its screen."""
        if not turn.effects:
            return turn
        values = apply_effects(Host(session=ctx.session, lockout=self.lockout), turn.effects)
        return self.engine.settle(turn.state, values) if turn.reply.awaiting else turn

    def sorry(self, flow: str, lang: str | None) -> str:
        """The apology screen in `lang` (or the default language)."""
        return self.engine.flows[flow].string("sorry", lang or self.settings.default_language)


def build(
    *,
    settings: Settings,
    db: Database,
    backplane: Backplane,
    send_committed: Callable[[Iterable[Outgoing]], None],
) -> Conversations:
    """Load and validate the flows (FlowError names file, state and language) and wire up."""
    flows = load_flows(flows_dir(settings), ACTIONS, constants(settings))
    for needed in (USSD_FLOW, SMS_FLOW):
        if needed not in flows:
            raise FlowError(f"no flow named {needed!r} in {flows_dir(settings)}")
    problems = check_keywords(flows[SMS_FLOW])
    if problems:
        raise FlowError("invalid SMS keywords:\n" + "\n".join(f"  {p}" for p in problems))
    lockout = Lockout(
        backplane=backplane,
        failures=settings.lookup_lockout_failures,
        seconds=settings.lookup_lockout_seconds,
    )
    return Conversations(
        engine=Engine(flows, ACTIONS, constants(settings)),
        keywords=Keywords.from_flow(flows[SMS_FLOW]),
        sessions=UssdSessions(backplane, ttl_seconds=settings.ussd_session_ttl_seconds),
        lockout=lockout,
        db=db,
        settings=settings,
        send_committed=send_committed,
    )


# USSD -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UssdHop:
    """One hop as the network sends it (already checked by the channel)."""

    session_id: str
    phone: str
    service_code: str
    text: str


def answer_hop(conv: Conversations, hop: UssdHop) -> str:
    """The reply body (`CON ...` or `END ...`) for one hop; never raises."""
    record: dict[str, Any] | None = None
    try:
        # An empty text is the dial itself: there is nothing to load (a repeat of it just
        # shows the first screen again).
        record = conv.sessions.load(hop.session_id, now=conv.clock()) if hop.text else None
        if (
            record is not None
            and record.get("phone") == hop.phone
            and record.get("text") == hop.text
        ):
            return str(record["reply"])  # the network repeated a hop: same screen
        fresh = record is None or record.get("done") or record.get("phone") != hop.phone
        record = _start(conv, hop) if fresh else _continue(conv, hop, record or {})
    except Exception:
        log.exception("USSD session %s failed on input %r", hop.session_id, hop.text[-40:])
        lang = (record or {}).get("state", {}).get("lang")
        record = {
            "phone": hop.phone,
            "text": hop.text,
            "done": True,
            "hops": int((record or {}).get("hops", 0)) + 1,
            "reply": "END " + conv.sorry(USSD_FLOW, lang),
        }
    _save(conv, hop, record)
    return str(record["reply"])


def _start(conv: Conversations, hop: UssdHop) -> dict[str, Any]:
    # An unknown or expired session starts cleanly at the first screen, whatever the text.
    ctx = conv.context(phone=hop.phone, channel="ussd")
    try:
        turn = conv.engine.begin(USSD_FLOW, lang=conv.settings.default_language, context=ctx)
        turn = conv.applied(ctx, turn)
        ctx.close(commit=True)
    finally:
        ctx.close(commit=False)
    return _record(hop, turn.state, turn.reply, hops=1)


def _continue(conv: Conversations, hop: UssdHop, record: dict[str, Any]) -> dict[str, Any]:
    inputs = _new_inputs(str(record.get("text", "")), hop.text)
    if len(inputs) > MAX_INPUTS_PER_HOP:
        raise GatewayError(f"{len(inputs)} inputs in one hop")
    state: dict[str, Any] = record["state"]
    reply: Reply | None = None
    ctx = conv.context(phone=hop.phone, channel="ussd")
    try:
        for i, piece in enumerate(inputs):
            rest = conv.engine.wants_text(state)
            # Free text may itself hold a `*`: it takes every remaining input.
            turn = conv.engine.resume(state, "*".join(inputs[i:]) if rest else piece, context=ctx)
            # Applied before the next input: a second wrong number must see the first.
            reply, state, _ = conv.applied(ctx, turn)
            if reply.end or rest:
                break
        ctx.close(commit=True)
    finally:
        ctx.close(commit=False)
    assert reply is not None  # there is always at least one input
    return _record(hop, state, reply, hops=int(record.get("hops", 0)) + 1)


def _new_inputs(seen: str, text: str) -> list[str]:
    """The inputs `text` adds to what the session has seen (AT joins them all with `*`)."""
    if seen == "":
        return text.split("*")
    if text.startswith(seen + "*"):
        return text[len(seen) + 1 :].split("*")
    # The network lost track of the history: the last input is the one just typed.
    return [text.rsplit("*", 1)[-1]]


def _record(hop: UssdHop, state: dict[str, Any], reply: Reply, *, hops: int) -> dict[str, Any]:
    return {
        "phone": hop.phone,
        "text": hop.text,
        "state": state,
        "hops": hops,
        "done": reply.end,
        "reply": ("END " if reply.end else "CON ") + reply.text,
    }


def _save(conv: Conversations, hop: UssdHop, record: dict[str, Any]) -> None:
    try:
        conv.sessions.save(hop.session_id, record, now=conv.clock())
    except Exception:
        # The reply is still right for this hop; the next one starts over.
        log.exception("USSD session %s could not be saved", hop.session_id)


# SMS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsAnswer:
    """The reply to one inbound SMS, queued in the outbox; `repeated` for a replay."""

    text: str
    message_id: int
    repeated: bool


def answer_sms(
    conv: Conversations,
    *,
    phone: str,
    text: str,
    provider: str,
    provider_message_id: str,
    sent_by_provider: bool = False,
) -> SmsAnswer:
    """Reply to a command once per inbound message: queue the reply, then send it.

    With `sent_by_provider` (Twilio, which sends the TwiML reply itself) the outbox row
    records the reply as already sent, and nothing else sends it.
    """
    key = f"sms-reply:{provider}:{provider_message_id}"
    with conv.db.transaction() as session:
        existing = _message(session, key)
        if existing is not None:
            return SmsAnswer(text=existing.body, message_id=row_id(existing.id), repeated=True)
    body = _sms_reply(conv, phone=phone, text=text)
    with conv.db.transaction() as session:
        message = queue_message(
            session=session, recipient=phone, body=body, kind="reply", dedupe_key=key
        )
        if message is None:  # the same inbound message, answered meanwhile
            answered = _message(session, key)
            assert answered is not None
            return SmsAnswer(text=answered.body, message_id=row_id(answered.id), repeated=True)
        if sent_by_provider:
            message.status, message.provider = MessageStatus.SENT, provider
            message.sent_at = message.updated_at = conv.clock()
            session.add(message)
    if not sent_by_provider:
        conv.send_committed([row_id(message.id)])
    return SmsAnswer(text=message.body, message_id=row_id(message.id), repeated=False)


def _sms_reply(conv: Conversations, *, phone: str, text: str) -> str:
    command = conv.keywords.parse(text)
    lang = command.keyword_lang or conv.settings.default_language
    ctx = conv.context(phone=phone, channel="sms")
    try:
        turn = conv.engine.begin(SMS_FLOW, lang=lang, data=command.data(), context=ctx)
        reply = conv.applied(ctx, turn).reply
        ctx.close(commit=True)
        return reply.text
    except GatewayError:
        log.exception("SMS command %r from %s failed", text[:40], phone)
        return conv.sorry(SMS_FLOW, lang)
    finally:
        ctx.close(commit=False)


def _message(session: Session, key: str) -> OutboundMessage | None:
    return session.exec(select(OutboundMessage).where(OutboundMessage.dedupe_key == key)).first()
