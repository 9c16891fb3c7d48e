"""Messaging's periodic work: the outbox sweep, reminders, the delivery-report chase.

The outbox is the source of truth: the sweep re-enqueues (or, without Redis, sends)
every queued message that is due and reconciles every `sending` row whose lease ran out,
so a flushed or restarted Redis, or a writer that died before sending, loses nothing.
With REDIS_URL the worker's scheduler runs these jobs; without it a thread in the web
process does (paygo.messaging.setup). Sending right after a commit is
`paygo.messaging.sending`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from paygo.extensions import Gateway, current_gateway
from paygo.messaging import outbox, reminders, reports
from paygo.messaging.dispatcher import Outcome
from paygo.messaging.sending import (
    enqueue,
    reconcile_job_id,
    reconcile_message_job,
    run_reconcile,
    run_send,
    send_job_id,
    send_message_job,
)
from paygo.models import utcnow
from paygo.payments.tasks import sweep_payments_job

log = logging.getLogger(__name__)

#: Outcomes that mean the provider is in trouble: an inline sweep stops its pass there.
TROUBLE = frozenset({"retry", "unknown"})


def sweep_job() -> dict[str, int]:
    """rq job: re-enqueue due messages, reconcile abandoned ones."""
    return sweep(current_gateway())


def reminders_job() -> int:
    """rq job: write the reminders due now, and send them."""
    return len(reminders.write_due(current_gateway()))


def daily_reconcile_job() -> dict[str, int]:
    """rq job: chase delivery reports that never came, then sweep."""
    gateway = current_gateway()
    counts = reports.chase(gateway)
    counts.update(sweep(gateway))
    return counts


def sweep(gateway: Gateway, *, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Enqueue (or, inline, send) every due message; reconcile expired `sending` rows."""
    now = now or utcnow()
    with gateway.db.session() as session:
        expired = outbox.expired_sending(session=session, now=now, limit=limit)
        due = outbox.due(session=session, now=now, limit=limit)
    if not gateway.jobs.inline:
        for message_id, attempts in expired:
            enqueue(
                gateway,
                reconcile_message_job,
                message_id,
                job_id=reconcile_job_id(message_id, attempts),
            )
        for message_id, attempts in due:
            enqueue(
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
