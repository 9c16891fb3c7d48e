"""Send the outbox exactly once: claim a row, call the provider, record what it said.

How a message is never sent twice
---------------------------------
1. Claim. One conditional UPDATE moves a row from `queued` to `sending` (attempts + 1,
   a lease in `next_attempt_at`) and commits *before* the provider is called. Two
   workers, a repeated rq job or a sweep racing a job cannot both win it.
2. Send, then record. Accepted: `sent` with the provider's message id. Refused before
   sending (connection refused, HTTP 5xx from Africa's Talking, a per-recipient
   "try later" code): back to `queued` with exponential backoff and jitter. Refused for
   good (invalid number, blacklisted, do-not-disturb): `failed`, the dead letter, with
   no retry. After `SMS_MAX_ATTEMPTS` the message is dead-lettered too.
3. Unknown outcome. A read timeout, a connection lost after the request went out, a
   Twilio 5xx or a worker killed between the provider's answer and our commit leaves the
   row in `sending`. It is never resent blindly: when its lease runs out it is
   reconciled first.
   - Twilio: the recipient's latest messages are listed (same body, not older than the
     row); found means recorded as sent, not found means Twilio never took it, so it is
     sent again. Twilio's status callback URL also carries our outbox id, so its
     reports match a row whose SID we never stored.
   - Africa's Talking has no lookup API: a delivery report for the number of a row in
     `sending` with no provider id is taken as that row's (and records the id). If none
     arrives within `SMS_RECONCILE_AFTER_SECONDS` (default 300 s) the message is sent
     again.
   - Infobip: we give each message its id (outbox id and a digest), so it is looked up
     by that id in Infobip's message logs once `SMS_RECONCILE_AFTER_SECONDS` have passed
     (the logs may trail the send); its delivery reports carry the id too.
   - Console: nothing leaves the process, so not recorded means not sent.

Residual risk: an Africa's Talking message that AT accepted but whose answer we lost,
and for which no delivery report reaches us within the window (reports not configured
at AT, or our endpoint down that long), is sent a second time. Two messages in
`sending` to the same number at the same moment could take each other's report (the
oldest wins). With Twilio, a message that does not show in its list within the lease
(listing lag) could be sent twice, and likewise with Infobip for a message its logs do
not show within the window (the resend carries the same id, which Infobip may refuse).
A provider call that outlives its own timeout and the lease margin could race a
reconciliation. We chose a possible duplicate over a lost
token in these narrow cases: a repeated token SMS is harmless, a missing one leaves a
customer in the dark.
"""

from __future__ import annotations

import logging
import random
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, text, update
from sqlmodel import Session, col, select

from paygo.errors import ProviderError
from paygo.gateway import Gateway
from paygo.messaging import quiet
from paygo.messaging.outbox import Claim
from paygo.messaging.providers import (
    Accepted,
    OutcomeUnknown,
    Providers,
    SmsProvider,
    StatusReport,
)
from paygo.models import Account, Customer, MessageStatus, OutboundMessage, utcnow

if TYPE_CHECKING:  # settings reads the provider registry in this package
    from paygo.settings import Settings

log = logging.getLogger(__name__)

RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERABLE: 3,
    MessageStatus.FAILED: 3,
}
FINAL = frozenset({MessageStatus.DELIVERED, MessageStatus.UNDELIVERABLE, MessageStatus.FAILED})
#: Kinds held back during quiet hours; token receipts and replies go out at once.
QUIET_KINDS = frozenset({"reminder"})
#: A claim outlives this many provider timeouts (connect + read, and a margin).
LEASE_TIMEOUTS = 3


@dataclass(frozen=True)
class Outcome:
    """What one step did: sent, retry, failed, unknown, deferred or skipped; `at` is next."""

    action: str
    message_id: int
    attempt: int = 0
    at: datetime | None = None


def retry_delay(settings: Settings, attempt: int) -> timedelta:
    """Backoff before attempt `attempt + 1`: base x 5^(attempt-1), capped, +-20% jitter."""
    base = settings.sms_retry_base_seconds * 5 ** max(0, attempt - 1)
    seconds = min(base, settings.sms_retry_max_seconds) * random.uniform(0.8, 1.2)
    return timedelta(seconds=max(seconds, 0.001))


def reconcile_wait(settings: Settings, provider: SmsProvider, attempt: int) -> timedelta:
    """How long an unknown outcome waits for evidence (a report, the provider's list)."""
    delay = retry_delay(settings, attempt)
    if provider.authoritative_lookup:
        return delay
    return max(delay, timedelta(seconds=settings.sms_reconcile_after_seconds))


def deliver(gateway: Gateway, message_id: int, *, now: datetime | None = None) -> Outcome:
    """Send one queued message if it is due, and record the provider's answer."""
    now = now or utcnow()
    claim = _claim(gateway, message_id, now)
    if not isinstance(claim, Claim):
        return claim
    return send_claim(gateway, claim)


class ClaimOnWrite:
    """Claims each outbox row as it is written, for a job that sends it after its commit.

    A payment's receipt is written in the crediting transaction already `sending`,
    attempt 1, with its lease, exactly as `_claim` would leave it: no other sender can
    take it, and the job that wrote it hands its Claim (`outbox.outgoing`) to
    `send_committed` once that transaction commits, without a claiming transaction of
    its own. A job that dies before sending leaves a row whose lease runs out and is
    reconciled like any other.
    """

    def __init__(self, *, sms: Providers, settings: Settings) -> None:
        self.sms = sms
        self.settings = settings

    def __call__(self, message: OutboundMessage) -> bool:
        """Mark a new row claimed (attempt 1); False leaves it to the dispatcher as usual:
        kinds quiet hours may defer, and a provider that cannot be set up (the payment is
        credited all the same; its receipt waits in the queue)."""
        if message.kind in QUIET_KINDS:
            return False
        try:
            name = self.sms.route(message.recipient)
            provider = self.sms.get(name)
        except Exception:
            log.exception("SMS provider unavailable: message to %s left queued", message.recipient)
            return False
        now = utcnow()  # the lease runs from now, not from when the transaction began
        message.status, message.attempts, message.provider = MessageStatus.SENDING, 1, name
        message.next_attempt_at = _lease(self.settings, provider, 1, now)
        message.updated_at = now
        return True


def _lease(settings: Settings, provider: SmsProvider, attempt: int, now: datetime) -> datetime:
    """Until when an attempt owns its row: past every provider timeout, then the wait
    for evidence of an unknown outcome."""
    return (
        now
        + timedelta(seconds=LEASE_TIMEOUTS * settings.sms_timeout_seconds)
        + reconcile_wait(settings, provider, attempt)
    )


def send_claim(gateway: Gateway, claim: Claim) -> Outcome:
    """Call the provider for a claimed attempt and record what it said."""
    message_id = claim.message_id
    provider = gateway.sms.get(claim.provider)
    try:
        accepted = provider.send(
            message_id=claim.message_id, recipient=claim.recipient, body=claim.body
        )
    except OutcomeUnknown as exc:
        return _unknown(gateway, claim, provider, exc.reason)
    except ProviderError as exc:
        return _refused(gateway, claim, exc)
    except Exception as exc:
        # A surprise after the request may have gone out: treat it as unknown, not refused.
        log.exception("sending message %s through %s failed", message_id, claim.provider)
        return _unknown(gateway, claim, provider, f"{type(exc).__name__}: {exc}")
    return _record_accepted(gateway, claim, accepted)


def _claim(gateway: Gateway, message_id: int, now: datetime) -> Claim | Outcome:
    settings = gateway.settings
    with gateway.db.transaction() as session:
        message = session.get(OutboundMessage, message_id)
        if message is None or message.status != MessageStatus.QUEUED:
            return Outcome("skipped", message_id)
        if message.next_attempt_at is not None and message.next_attempt_at > now:
            return Outcome("skipped", message_id, message.attempts + 1, message.next_attempt_at)
        if message.kind in QUIET_KINDS:
            allowed = quiet.next_allowed(
                now,
                _zone(session, message, settings),
                settings.quiet_hours_start,
                settings.quiet_hours_end,
            )
            if allowed > now:
                message.next_attempt_at, message.updated_at = allowed, now
                session.add(message)
                return Outcome("deferred", message_id, message.attempts + 1, allowed)
        name = gateway.sms.route(message.recipient)
        attempt = message.attempts + 1
        lease = _lease(settings, gateway.sms.get(name), attempt, now)
        won = session.exec(
            update(OutboundMessage)
            .where(col(OutboundMessage.id) == message_id)
            .where(col(OutboundMessage.status) == MessageStatus.QUEUED)
            .where(col(OutboundMessage.attempts) == message.attempts)
            .values(
                status=MessageStatus.SENDING,
                attempts=attempt,
                provider=name,
                next_attempt_at=lease,
                updated_at=now,
            )
        )
        if won.rowcount != 1:
            return Outcome("skipped", message_id)
        return Claim(message_id, attempt, name, message.recipient, message.body)


def _zone(session: Session, message: OutboundMessage, settings: Settings) -> zoneinfo.ZoneInfo:
    query = select(Customer.timezone)
    if message.account_id is not None:
        query = query.join(Account, col(Account.customer_id) == col(Customer.id)).where(
            col(Account.id) == message.account_id
        )
    else:
        query = query.where(Customer.phone == message.recipient)
    return quiet.zone(session.exec(query).first(), settings.default_timezone)


def _owned(session: Session, claim: Claim) -> OutboundMessage | None:
    """The claimed row, locked, if this attempt still owns it."""
    message = session.get(OutboundMessage, claim.message_id, with_for_update=True)
    if (
        message is None
        or message.status != MessageStatus.SENDING
        or message.attempts != claim.attempt
    ):
        return None
    return message


def _record_accepted(gateway: Gateway, claim: Claim, accepted: Accepted) -> Outcome:
    now = utcnow()
    with gateway.db.transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Not worth a disk flush of its own: should the database lose this commit in
            # a crash, the row is still `sending` and is reconciled when its lease ends
            # (a delivery report or the provider's list finds it), as after a worker
            # crash. The flushes saved are the ones payment acknowledgements wait for.
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        won = session.exec(
            update(OutboundMessage)
            .where(col(OutboundMessage.id) == claim.message_id)
            .where(col(OutboundMessage.status) == MessageStatus.SENDING)
            .where(col(OutboundMessage.attempts) == claim.attempt)
            .values(
                _marked(accepted.status, accepted.reason, now)
                | {"provider_message_id": accepted.provider_message_id}
            )
        )
        if won.rowcount == 1:
            return Outcome("sent", claim.message_id, claim.attempt)
        message = _owned(session, claim)
        if message is None:
            # A delivery report matched it first (or a reconciliation did): keep their
            # state, but make sure the provider's id is on the row.
            message = session.get(OutboundMessage, claim.message_id, with_for_update=True)
            if message is not None and message.provider_message_id is None:
                message.provider_message_id = accepted.provider_message_id
                message.sent_at = message.sent_at or now
                session.add(message)
            return Outcome("sent", claim.message_id, claim.attempt)
        _mark(message, accepted.status, accepted.reason, now)
        message.provider_message_id = accepted.provider_message_id
        session.add(message)
    return Outcome("sent", claim.message_id, claim.attempt)


def _refused(gateway: Gateway, claim: Claim, exc: ProviderError) -> Outcome:
    now, settings = utcnow(), gateway.settings
    with gateway.db.transaction() as session:
        message = _owned(session, claim)
        if message is None:
            return Outcome("skipped", claim.message_id)
        if exc.permanent or message.attempts >= settings.sms_max_attempts:
            reason = (
                exc.reason
                if exc.permanent
                else f"gave up after {message.attempts} attempts: {exc.reason}"
            )
            _mark(message, MessageStatus.FAILED, reason, now)
            session.add(message)
            return Outcome("failed", claim.message_id, claim.attempt)
        at = now + retry_delay(settings, message.attempts)
        message.status, message.status_reason = MessageStatus.QUEUED, exc.reason[:300]
        message.next_attempt_at, message.updated_at = at, now
        session.add(message)
    return Outcome("retry", claim.message_id, claim.attempt + 1, at)


def _unknown(gateway: Gateway, claim: Claim, provider: SmsProvider, reason: str) -> Outcome:
    now = utcnow()
    at = now + reconcile_wait(gateway.settings, provider, claim.attempt)
    with gateway.db.transaction() as session:
        message = _owned(session, claim)
        if message is None:
            return Outcome("skipped", claim.message_id)
        message.status_reason = f"outcome unknown: {reason}"[:300]
        message.next_attempt_at, message.updated_at = at, now
        session.add(message)
    return Outcome("unknown", claim.message_id, claim.attempt, at)


def _marked(status: MessageStatus, reason: str | None, now: datetime) -> dict[str, Any]:
    """`_mark` as column values, for a row the caller owns and has not read: sent or
    delivered times are only ever set here on a row still `sending`, so none is set."""
    values: dict[str, Any] = {"status": status, "next_attempt_at": None, "updated_at": now}
    if reason:
        values["status_reason"] = reason[:300]
    if status in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERABLE):
        values["sent_at"] = func.coalesce(OutboundMessage.sent_at, now)
    if status == MessageStatus.DELIVERED:
        values["delivered_at"] = func.coalesce(OutboundMessage.delivered_at, now)
    return values


def _mark(
    message: OutboundMessage, status: MessageStatus, reason: str | None, now: datetime
) -> None:
    message.status = status
    message.status_reason = reason[:300] if reason else message.status_reason
    message.next_attempt_at = None
    message.updated_at = now
    if status in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERABLE):
        message.sent_at = message.sent_at or now
    if status == MessageStatus.DELIVERED:
        message.delivered_at = message.delivered_at or now


def reconcile(gateway: Gateway, message_id: int, *, now: datetime | None = None) -> Outcome:
    """Settle a message left in `sending` past its lease: find it, or send it again."""
    now = now or utcnow()
    with gateway.db.session() as session:
        message = session.get(OutboundMessage, message_id)
        if (
            message is None
            or message.status != MessageStatus.SENDING
            or (message.next_attempt_at is not None and message.next_attempt_at > now)
        ):
            return Outcome("skipped", message_id)
        claim = Claim(
            message_id,
            message.attempts,
            message.provider or gateway.sms.route(message.recipient),
            message.recipient,
            message.body,
        )
        since = message.created_at
    provider = gateway.sms.get(claim.provider)
    try:
        found = provider.lookup(
            message_id=message_id, recipient=claim.recipient, body=claim.body, since=since
        )
    except Exception as exc:
        log.warning("looking up message %s at %s failed: %s", message_id, claim.provider, exc)
        return _unknown(gateway, claim, provider, f"lookup failed: {type(exc).__name__}")
    return _settle(gateway, claim, found, now)


def _settle(gateway: Gateway, claim: Claim, found: Accepted | None, now: datetime) -> Outcome:
    settings = gateway.settings
    with gateway.db.transaction() as session:
        message = _owned(session, claim)
        if message is None:
            return Outcome("skipped", claim.message_id)
        if found is not None and not _id_taken(session, claim, found.provider_message_id):
            _mark(message, found.status, f"reconciled: {found.reason or claim.provider}", now)
            message.provider_message_id = found.provider_message_id
            session.add(message)
            return Outcome("sent", claim.message_id, claim.attempt)
        if message.attempts >= settings.sms_max_attempts:
            _mark(
                message,
                MessageStatus.FAILED,
                f"outcome unknown after {message.attempts} attempts",
                now,
            )
            session.add(message)
            return Outcome("failed", claim.message_id, claim.attempt)
        message.status = MessageStatus.QUEUED
        message.status_reason = f"not confirmed by {claim.provider}: sending again"
        message.next_attempt_at, message.updated_at = None, now
        session.add(message)
    return Outcome("retry", claim.message_id, claim.attempt + 1, now)


def _id_taken(session: Session, claim: Claim, provider_message_id: str | None) -> bool:
    """Whether another of our rows already owns this provider id (same text sent twice)."""
    if provider_message_id is None:
        return False
    return (
        session.exec(
            select(OutboundMessage.id)
            .where(OutboundMessage.provider == claim.provider)
            .where(OutboundMessage.provider_message_id == provider_message_id)
            .where(col(OutboundMessage.id) != claim.message_id)
        ).first()
        is not None
    )


def apply_report(
    *, session: Session, report: StatusReport, now: datetime | None = None
) -> OutboundMessage | None:
    """Apply a delivery report or status callback; None when it is not about our messages."""
    now = now or utcnow()
    message = _find_reported(session, report)
    if message is None:
        return None
    if message.provider_message_id is None and report.provider_message_id:
        message.provider_message_id = report.provider_message_id
    message.provider = message.provider or report.provider
    if advances(MessageStatus(message.status), report.status):
        _mark(message, report.status, report.reason, now)
    message.updated_at = now
    session.add(message)
    return message


def advances(current: MessageStatus, new: MessageStatus) -> bool:
    """Whether a report moves a message forward (reports arrive out of order and twice)."""
    if new == current or new in (MessageStatus.QUEUED, MessageStatus.SENDING):
        return False
    if new == MessageStatus.DELIVERED:
        return True  # the handset has it: that beats any earlier failure
    return current not in FINAL and RANK[new] > RANK[current]


def _find_reported(session: Session, report: StatusReport) -> OutboundMessage | None:
    if report.provider_message_id:
        found = session.exec(
            select(OutboundMessage)
            .where(OutboundMessage.provider == report.provider)
            .where(OutboundMessage.provider_message_id == report.provider_message_id)
            .with_for_update()
        ).first()
        if found is not None:
            return found
    if report.message_id is not None:
        found = session.get(OutboundMessage, report.message_id, with_for_update=True)
        if (
            found is not None
            and found.provider in (None, report.provider)
            and found.provider_message_id in (None, report.provider_message_id)
        ):
            return found
    if report.recipient:
        # A send whose answer we lost: the oldest such row to this number is the one.
        return session.exec(
            select(OutboundMessage)
            .where(OutboundMessage.status == MessageStatus.SENDING)
            .where(OutboundMessage.provider == report.provider)
            .where(col(OutboundMessage.provider_message_id).is_(None))
            .where(OutboundMessage.recipient == report.recipient)
            .order_by(col(OutboundMessage.id))
            .with_for_update()
        ).first()
    return None
