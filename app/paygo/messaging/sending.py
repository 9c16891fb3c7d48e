"""Sending what a transaction wrote to the outbox, once that transaction has committed.

Every writer of the outbox (crediting, operator tokens, SMS replies, reminders, an
operator's retry) commits first, then hands what it wrote to `send_committed`:

- a message id: with REDIS_URL an rq job whose id is derived from the work
  (`send-message-17-1` is attempt 1 of message 17; rq allows letters, digits, `_` and
  `-` only), so enqueuing it twice is harmless; without Redis it is sent inline, now;
- a Claim: a receipt written already claimed in the crediting transaction
  (dispatcher.ClaimOnWrite), sent by this process at once, without a job.

Whatever comes next (a retry at its backoff time, the reconciliation of an unknown
outcome, a send deferred by quiet hours) is scheduled by `follow_up`. Nothing is sent
from a hook: a message whose writer died before sending is found by `sweep`, the
outbox's backstop, which paygo.schedule runs every SMS_SWEEP_INTERVAL_SECONDS: it
re-enqueues (or, without Redis, sends) every queued message that is due and reconciles
every `sending` row whose lease ran out, so a flushed or restarted Redis loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from paygo import faults
from paygo.errors import Unavailable
from paygo.gateway import Gateway, current_gateway
from paygo.messaging import dispatcher, outbox
from paygo.messaging.dispatcher import Outcome
from paygo.messaging.outbox import Claim, Outgoing
from paygo.models import utcnow

log = logging.getLogger(__name__)

#: Outcomes that mean the provider is in trouble: an inline sweep stops its pass there.
TROUBLE = frozenset({"retry", "unknown"})


def send_committed(gateway: Gateway, outgoing: Iterable[Outgoing]) -> None:
    """Send messages whose transaction has committed; never raises (the sweep is the backstop).

    Call it once the writing transaction has ended and given its connection back: an
    inline send opens its own, and holding both would drain the pool under load.
    """
    for item in outgoing:
        try:
            if isinstance(item, Claim):
                faults.point("claimed_unsent")
                follow_up(gateway, dispatcher.send_claim(gateway, item))
            elif gateway.backplane.inline:
                run_send(gateway, item)
            else:
                enqueue(gateway, send_message_job, item, job_id=send_job_id(item, 1))
        except Exception:  # the commit has happened: the row waits for the sweep
            log.exception("sending message %s failed; the sweep will settle it", item)


def send_job_id(message_id: int, attempt: int, at: datetime | None = None) -> str:
    """The rq job id of one attempt (and of a deferred send, by its time)."""
    suffix = f"-at{int(at.timestamp())}" if at is not None else ""
    return f"send-message-{message_id}-{attempt}{suffix}"


def reconcile_job_id(message_id: int, attempt: int) -> str:
    """The rq job id of the reconciliation of one attempt."""
    return f"reconcile-message-{message_id}-{attempt}"


def send_message_job(message_id: int) -> str:
    """rq job: send one message (a repeat is harmless: the claim admits one attempt)."""
    return run_send(current_gateway(), message_id).action


def reconcile_message_job(message_id: int) -> str:
    """rq job: settle a message whose send outcome is unknown."""
    return run_reconcile(current_gateway(), message_id).action


def run_send(gateway: Gateway, message_id: int, *, now: datetime | None = None) -> Outcome:
    """Deliver one message and schedule whatever comes next."""
    outcome = dispatcher.deliver(gateway, message_id, now=now)
    follow_up(gateway, outcome, now=now)
    return outcome


def run_reconcile(gateway: Gateway, message_id: int, *, now: datetime | None = None) -> Outcome:
    """Reconcile one message and schedule whatever comes next."""
    outcome = dispatcher.reconcile(gateway, message_id, now=now)
    follow_up(gateway, outcome, now=now)
    return outcome


def follow_up(gateway: Gateway, outcome: Outcome, *, now: datetime | None = None) -> None:
    """Schedule a message's next step: a retry, a reconciliation or a deferred send."""
    if outcome.at is None or outcome.action not in {"retry", "unknown", "deferred"}:
        return
    now = now or utcnow()
    if gateway.backplane.inline:
        # Without Redis an immediate resend runs now; later steps wait for the sweep.
        if outcome.action == "retry" and outcome.at <= now:
            run_send(gateway, outcome.message_id, now=now)
        return
    delay = outcome.at - now
    if outcome.action == "unknown":
        enqueue(
            gateway,
            reconcile_message_job,
            outcome.message_id,
            delay=delay,
            job_id=reconcile_job_id(outcome.message_id, outcome.attempt),
        )
    else:
        at = outcome.at if outcome.action == "deferred" else None
        enqueue(
            gateway,
            send_message_job,
            outcome.message_id,
            delay=delay,
            job_id=send_job_id(outcome.message_id, outcome.attempt, at),
        )


def enqueue(
    gateway: Gateway,
    func: Callable[[int], Any],
    message_id: int,
    *,
    job_id: str,
    delay: timedelta | None = None,
) -> bool:
    """Queue one messaging job; False (logged) when Redis is away: the sweep catches up."""
    try:
        gateway.backplane.enqueue(func, message_id, job_id=job_id, delay=delay)
        return True
    except Unavailable as exc:
        log.warning("could not enqueue %s (%s); the sweep will pick it up", job_id, exc)
        return False


def sweep(gateway: Gateway, *, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Enqueue (or, inline, send) every due message; reconcile expired `sending` rows."""
    now = now or utcnow()
    with gateway.db.session() as session:
        expired = outbox.expired_sending(session=session, now=now, limit=limit)
        due = outbox.due(session=session, now=now, limit=limit)
    counts = {"reconciling": len(expired), "due": len(due)}
    if gateway.backplane.inline:
        _inline_pass(gateway, run_reconcile, [i for i, _ in expired], now)
        _inline_pass(gateway, run_send, [i for i, _ in due], now)
        return counts
    for message_id, attempts in expired:
        job = reconcile_job_id(message_id, attempts)
        enqueue(gateway, reconcile_message_job, message_id, job_id=job)
    for message_id, attempts in due:
        enqueue(gateway, send_message_job, message_id, job_id=send_job_id(message_id, attempts + 1))
    return counts


def _inline_pass(
    gateway: Gateway, step: Callable[..., Outcome], message_ids: list[int], now: datetime
) -> None:
    for message_id in message_ids:
        try:
            outcome = step(gateway, message_id, now=now)
        except Exception:
            log.exception("messaging step for message %s failed", message_id)
            return
        if outcome.action in TROUBLE:
            # The provider is likely down: each further try would wait out its timeout.
            return
