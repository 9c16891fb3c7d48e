"""Messaging's background work: rq jobs by message id, and the same steps inline.

With REDIS_URL, every send is an rq job whose id is derived from the work
(`send-message-17-1` is attempt 1 of message 17; rq allows letters, digits, `_`
and `-` only), so enqueuing it twice is harmless, and
a retry is scheduled at its backoff time (the worker runs rq's scheduler). Without
Redis the same steps run inline right after the writing transaction commits, and a
thread in the web process (paygo.messaging.setup) runs the periodic work below.

Either way the outbox is the source of truth: the sweep re-enqueues every queued
message that is due and reconciles every `sending` row whose lease ran out, so a
flushed or restarted Redis loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlmodel import Session

from paygo import faults
from paygo.extensions import Gateway, current_gateway
from paygo.messaging import dispatcher, outbox, reminders, reports
from paygo.messaging.dispatcher import Outcome
from paygo.models import OutboundMessage, utcnow

log = logging.getLogger(__name__)

#: Outcomes that mean the provider is in trouble: an inline sweep stops its pass there.
TROUBLE = frozenset({"retry", "unknown"})


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


def sweep_job() -> dict[str, int]:
    """rq job: re-enqueue due messages, reconcile abandoned ones."""
    return sweep(current_gateway())


def reminders_job() -> int:
    """rq job: write the reminders due now (sent after the commit)."""
    return len(reminders.write_due(current_gateway()))


def daily_reconcile_job() -> dict[str, int]:
    """rq job: chase delivery reports that never came, then sweep."""
    gateway = current_gateway()
    counts = reports.chase(gateway)
    counts.update(sweep(gateway))
    return counts


def run_send(gateway: Gateway, message_id: int) -> Outcome:
    """Deliver one message and schedule whatever comes next."""
    outcome = dispatcher.deliver(gateway, message_id)
    follow_up(gateway, outcome)
    return outcome


def run_reconcile(gateway: Gateway, message_id: int) -> Outcome:
    """Reconcile one message and schedule whatever comes next."""
    outcome = dispatcher.reconcile(gateway, message_id)
    follow_up(gateway, outcome)
    return outcome


def follow_up(gateway: Gateway, outcome: Outcome) -> None:
    """Schedule a message's next step: a retry, a reconciliation or a deferred send."""
    if outcome.at is None or outcome.action not in {"retry", "unknown", "deferred"}:
        return
    now = utcnow()
    if gateway.jobs.inline:
        # Without Redis an immediate resend runs now; later steps wait for the sweep.
        if outcome.action == "retry" and outcome.at <= now:
            run_send(gateway, outcome.message_id)
        return
    delay = outcome.at - now
    if outcome.action == "unknown":
        _enqueue(
            gateway,
            reconcile_message_job,
            outcome.message_id,
            delay=delay,
            job_id=reconcile_job_id(outcome.message_id, outcome.attempt),
        )
    else:
        at = outcome.at if outcome.action == "deferred" else None
        _enqueue(
            gateway,
            send_message_job,
            outcome.message_id,
            delay=delay,
            job_id=send_job_id(outcome.message_id, outcome.attempt, at),
        )


def _enqueue(
    gateway: Gateway,
    func: Callable[[int], Any],
    message_id: int,
    *,
    job_id: str,
    delay: timedelta | None = None,
) -> bool:
    try:
        gateway.jobs.enqueue(func, message_id, job_id=job_id, delay=delay)
        return True
    except RedisError as exc:
        log.warning("could not enqueue %s (%s); the sweep will pick it up", job_id, exc)
        return False


def send_what_it_writes(gateway: Gateway, session: Session) -> None:
    """Messages this transaction writes are claimed as written and sent by this process
    as soon as it commits (dispatcher.ClaimOnWrite).

    A payment's receipt is sent by the job that credited it: the customer gets the code
    sooner, and the worker saves a claiming transaction and a second rq job (about 60
    Redis commands of bookkeeping). Work that writes many messages at once (reminders)
    still hands each one to its own job.
    """
    session.info[outbox.CLAIM_ON_WRITE] = dispatcher.ClaimOnWrite(gateway)


def send_claimed(gateway: Gateway, messages: Iterable[OutboundMessage]) -> None:
    """Send rows claimed as they were written, now that their transaction has committed."""
    for message in messages:
        faults.point("claimed_unsent")
        try:
            follow_up(gateway, dispatcher.send_claimed(gateway, message))
        except Exception:  # the row stays `sending`; its lease runs out and it is settled
            log.exception("sending message %s failed", message.id)


def dispatch_pending(gateway: Gateway, message_ids: Iterable[int]) -> None:
    """Send messages just committed: an rq job each, or inline when there is no Redis."""
    for message_id in message_ids:
        if not gateway.jobs.inline:
            _enqueue(gateway, send_message_job, message_id, job_id=send_job_id(message_id, 1))
            continue
        try:
            run_send(gateway, message_id)
        except Exception:  # the row stays queued or sending: the sweep settles it
            log.exception("sending message %s inline failed", message_id)


def sweep(gateway: Gateway, *, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Enqueue (or, inline, send) every due message; reconcile expired `sending` rows."""
    now = now or utcnow()
    with gateway.db.session() as session:
        expired = outbox.expired_sending(session=session, now=now, limit=limit)
        due = outbox.due(session=session, now=now, limit=limit)
    if not gateway.jobs.inline:
        for message_id, attempts in expired:
            _enqueue(
                gateway,
                reconcile_message_job,
                message_id,
                job_id=reconcile_job_id(message_id, attempts),
            )
        for message_id, attempts in due:
            _enqueue(
                gateway, send_message_job, message_id, job_id=send_job_id(message_id, attempts + 1)
            )
        return {"reconciling": len(expired), "due": len(due)}
    _inline_pass(gateway, run_reconcile, [i for i, _ in expired])
    _inline_pass(gateway, run_send, [i for i, _ in due])
    return {"reconciling": len(expired), "due": len(due)}


def _inline_pass(
    gateway: Gateway, step: Callable[[Gateway, int], Outcome], message_ids: list[int]
) -> None:
    for message_id in message_ids:
        try:
            outcome = step(gateway, message_id)
        except Exception:
            log.exception("messaging step for message %s failed", message_id)
            return
        if outcome.action in TROUBLE:
            # The provider is likely down: each further try would wait out its timeout.
            return


@dataclass(frozen=True)
class Periodic:
    """Work that runs on a schedule: every `every`, or on a cron line under rq."""

    name: str
    func: Callable[[], Any]
    every: timedelta
    cron: str | None = None
    timeout: int = 900


def periodic_jobs(gateway: Gateway) -> list[Periodic]:
    """The schedule: the sweeps, hourly reminders, the daily delivery-report chase."""
    from paygo.payments.tasks import sweep_payments_job

    sweep_every = gateway.settings.sms_sweep_interval_seconds
    return [
        Periodic("messages-sweep", sweep_job, timedelta(seconds=sweep_every)),
        Periodic("messages-reminders", reminders_job, timedelta(hours=1)),
        Periodic("messages-reconcile", daily_reconcile_job, timedelta(days=1), cron="30 3 * * *"),
        # Not messaging, but the same schedule runs it: a payment whose job was lost
        # (Redis restarted, worker killed before it started) is picked up again.
        Periodic("payments-sweep", sweep_payments_job, timedelta(minutes=2)),
    ]


def run_periodic(
    gateway: Gateway, last_run: dict[str, datetime], *, now: datetime | None = None
) -> list[str]:
    """Run (inline, in the app context) each periodic job whose time has come."""
    now = now or utcnow()
    ran = []
    for job in periodic_jobs(gateway):
        previous = last_run.get(job.name)
        if previous is not None and now - previous < job.every:
            continue
        last_run[job.name] = now
        try:
            job.func()
        except Exception:
            log.exception("periodic job %s failed", job.name)
        ran.append(job.name)
    return ran
