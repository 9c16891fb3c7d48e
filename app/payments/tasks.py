"""Payment jobs: reconcile one stored payment; re-enqueue the ones whose job never ran.

Jobs take ids and are idempotent: `process-payment-{id}` may run any number of times (a
duplicate enqueue, an rq retry, a re-run after the worker died) and credits once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from rq import Queue, Retry

from app import faults
from app.extensions import Gateway, current_gateway
from app.jobs import BACKOFF_SECONDS
from app.models import PaymentStatus, utcnow
from app.payments import intake
from app.payments.reconcile import (
    NotCreditable,
    Outcome,
    reconcile_payment,
    suspend_payment,
    waiting_payment_ids,
)
from app.payments.statement import parse_statement

log = logging.getLogger(__name__)

#: A payment still `received` this long after it arrived has lost its job.
STALE_AFTER = timedelta(minutes=2)
RETRIES = 3
#: How long rq keeps a finished job, and a failed one (as JobQueue.enqueue does).
RESULT_TTL, FAILURE_TTL = 3600, 7 * 86400


def job_id(payment_id: int) -> str:
    """The rq job id of a payment's reconciliation."""
    # rq 3 allows letters, digits, dashes and underscores only in job ids.
    return f"process-payment-{payment_id}"


def process_payment(payment_id: int) -> str:
    """Match, credit and message one stored payment; safe to run again. Returns its status."""
    gateway = current_gateway()
    outcome = reconcile(gateway, payment_id)
    faults.point("payment_committed")
    return outcome.status


def reconcile(gateway: Gateway, payment_id: int) -> Outcome:
    """Run the reconciler for one payment in its own transaction."""
    try:
        with gateway.db.transaction() as session:
            outcome = reconcile_payment(session=session, keys=gateway.keys,
                                        payment_id=payment_id, now=utcnow(),
                                        default_country=gateway.settings.default_country)
    except NotCreditable as exc:
        # Whatever crediting had begun is rolled back with its transaction.
        with gateway.db.transaction() as session:
            outcome = suspend_payment(session=session, payment_id=payment_id,
                                      reason=exc.message)
    log.info("payment #%s %s%s", payment_id, outcome.status,
             f" to {outcome.account_number} ({outcome.rule})" if outcome.rule else "")
    return outcome


def enqueue_payment(gateway: Gateway, payment_id: int, *, new: bool = False) -> None:
    """Queue a payment's reconciliation; if the queue is down the sweep will find it.

    `new`: the payment row was just inserted, so its job is queued in one Redis round trip
    without first looking for a pending one (a copy racing it may queue a second run of
    the job, which then finds nothing left to do).
    """
    try:
        if new and gateway.jobs.queue is not None:
            _enqueue_new(gateway.jobs.queue, payment_id)
        else:
            gateway.jobs.enqueue(process_payment, payment_id, job_id=job_id(payment_id),
                                 retries=RETRIES)
    except Exception:  # noqa: BLE001 - the payment is stored; sweep_payments re-enqueues it
        log.exception("could not enqueue %s", job_id(payment_id))


def _enqueue_new(queue: Queue, payment_id: int) -> None:
    # The options JobQueue.enqueue gives every job, written in one pipeline (MULTI/EXEC).
    with queue.connection.pipeline() as pipe:
        queue.enqueue(process_payment, payment_id, job_id=job_id(payment_id),
                      retry=Retry(max=RETRIES, interval=list(BACKOFF_SECONDS[:RETRIES])),
                      result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL, pipeline=pipe)
        pipe.execute()


def sweep_payments(gateway: Gateway, *, stale_after: timedelta = STALE_AFTER) -> int:
    """Re-enqueue payments stored but never reconciled; returns how many."""
    with gateway.db.session() as session:
        ids = waiting_payment_ids(session=session, received_before=utcnow() - stale_after)
    for payment_id in ids:
        enqueue_payment(gateway, payment_id)
    return len(ids)


@dataclass(frozen=True)
class StatementReport:
    """What an import did: new payments (and how they ended), known ones, skipped lines."""

    new: int
    known: int
    credited: int
    unmatched: int
    rejected: int
    skipped: int
    unmatched_ids: list[int]


def import_statement(gateway: Gateway, text: str) -> StatementReport:
    """Add the payments of a statement that we never heard of, reconciled like callbacks."""
    parsed = parse_statement(text)
    now = utcnow()
    with gateway.db.transaction() as session:
        stored = [intake.store_notice(session=session, notice=line.notice, raw=line.raw,
                                      now=now) for line in parsed.lines]
    new = [s for s in stored if s is not None and s.created]
    statuses = {s.payment_id: s.status for s in new}
    for stored_new in new:
        if stored_new.status == PaymentStatus.RECEIVED:
            statuses[stored_new.payment_id] = reconcile(gateway, stored_new.payment_id).status
    unmatched = [i for i, status in statuses.items() if status == PaymentStatus.UNMATCHED]
    return StatementReport(
        new=len(new), known=len(stored) - len(new),
        credited=sum(s == PaymentStatus.CREDITED for s in statuses.values()),
        unmatched=len(unmatched),
        rejected=sum(s == PaymentStatus.REJECTED for s in statuses.values()),
        skipped=parsed.skipped, unmatched_ids=unmatched)


def sweep_payments_job() -> int:
    """rq job: re-enqueue payments whose processing job was lost."""
    return sweep_payments(current_gateway())
