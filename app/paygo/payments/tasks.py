"""Payment jobs: drain the payments waiting to be reconciled; sweep up any left behind.

An acknowledged payment is committed as `received`; the ack then makes sure a drain job
is queued (`wake_drain`: one set-if-absent on the backplane when a drain is already
queued). A drain claims
the oldest waiting payment nobody else holds (`FOR UPDATE SKIP LOCKED`), reconciles it
in that transaction, sends its receipt once that commits, and takes the next, until none
is left or its time is up. Each worker runs its own drain under load, so payments cost no
rq job each.

`process-payment-{id}` reconciles one payment and may run any number of times (a
duplicate enqueue, an rq retry, a re-run after the worker died): it credits once. The
sweep queues it for payments still waiting after STALE_AFTER, and without Redis it runs
inline after each callback.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from paygo import faults
from paygo.gateway import Gateway, current_gateway
from paygo.messaging.dispatcher import ClaimOnWrite
from paygo.messaging.sending import send_committed
from paygo.models import Payment, PaymentStatus, row_id, utcnow
from paygo.payments import intake
from paygo.payments.reconcile import (
    NotCreditable,
    Outcome,
    any_waiting,
    claim_waiting_payment,
    lock_payment,
    reconcile_payment,
    suspend_payment,
    waiting_payment_ids,
)
from paygo.payments.statement import parse_statement

log = logging.getLogger(__name__)

#: A payment still `received` this long after it arrived has lost its job.
STALE_AFTER = timedelta(minutes=2)
RETRIES = 3
#: While a drain is queued and yet to start, acks find this backplane key set and queue
#: nothing. Short, so a process that set it and died before queuing the drain delays
#: nobody long.
DRAIN_FLAG, DRAIN_FLAG_TTL = "payments-drain-queued", timedelta(seconds=10)
#: The backplane's scored set of payments drains leave alone, scored by until when.
HELD_BACK = "payments-held-back"
#: A drain that saw a waiting payment locked by someone else looks again after this.
RECHECK_AFTER = timedelta(seconds=5)
#: A drain hands its worker back after this long, so other jobs are not kept waiting.
DRAIN_SECONDS = 20.0
#: How long drains leave a payment alone after it failed unexpectedly in one.
HOLD_BACK = timedelta(minutes=10)


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
    outcome = _reconcile(
        gateway, lambda session: lock_payment(session=session, payment_id=payment_id), claimed=[]
    )
    assert outcome is not None
    return outcome


def _reconcile(
    gateway: Gateway, pick: Callable[[Session], Payment | None], claimed: list[int]
) -> Outcome | None:
    """Reconcile the payment `pick` locks in the transaction it runs in, then send its
    receipt; None if it finds none. Its id goes in `claimed` first, so a caller knows which
    one failed.

    The receipt is written already claimed and sent by this process once the transaction
    commits: the customer gets the code sooner, and the worker saves a claiming
    transaction and a send job (about 60 Redis commands of bookkeeping).
    """
    try:
        with gateway.db.transaction() as session:
            payment = pick(session)
            if payment is None:
                return None
            claimed.append(row_id(payment.id))
            outcome = reconcile_payment(
                session=session,
                keys=gateway.keys,
                texts=gateway.texts,
                payment=payment,
                now=utcnow(),
                default_country=gateway.settings.default_country,
                claim=ClaimOnWrite(sms=gateway.sms, settings=gateway.settings),
            )
    except NotCreditable as exc:
        # Whatever crediting had begun is rolled back with its transaction.
        with gateway.db.transaction() as session:
            outcome = suspend_payment(session=session, payment_id=claimed[0], reason=exc.message)
    send_committed(gateway, outcome.outgoing)
    log.info(
        "payment #%s %s%s",
        outcome.payment_id,
        outcome.status,
        f" to {outcome.account_number} ({outcome.rule})" if outcome.rule else "",
    )
    return outcome


def payment_stored(gateway: Gateway, payment_id: int) -> None:
    """A payment waiting to be reconciled was committed: see that it will be."""
    if gateway.backplane.inline:
        enqueue_payment(gateway, payment_id)  # runs it now, in this process
    else:
        wake_drain(gateway, reason=payment_id)


def wake_drain(gateway: Gateway, *, reason: int | str) -> None:
    """Queue a drain unless one is already queued and yet to start; never raises.

    Safe without a lock: a drain deletes the flag before it looks for payments, and a
    payment is committed before its ack tests the flag. So either this call sets the
    flag and queues a drain, or a queued drain has not yet started and will see it.
    """
    backplane = gateway.backplane
    try:
        if backplane.put_if_absent(DRAIN_FLAG, str(reason), ttl=DRAIN_FLAG_TTL, now=utcnow()):
            _enqueue_drain(gateway, reason)
    except Exception:  # noqa: BLE001 - the payments are stored; the sweep finds them
        log.exception("could not queue a payment drain")
        with suppress(Exception):
            backplane.delete(DRAIN_FLAG)  # the next payment tries again


def drain_payments() -> int:
    """rq job: reconcile waiting payments until none is left; returns how many."""
    gateway = current_gateway()
    gateway.backplane.delete(DRAIN_FLAG)  # later payments wake anew
    done, more = drain(gateway, seconds=DRAIN_SECONDS)
    if more:  # time is up with payments still waiting: queue behind the other jobs
        wake_drain(gateway, reason=f"{done}-more-{uuid.uuid4().hex[:8]}")
    return done


def drain(gateway: Gateway, *, seconds: float) -> tuple[int, bool]:
    """Reconcile waiting payments for up to `seconds`: (how many, whether some remain).

    A payment that fails unexpectedly is held back from drains for HOLD_BACK (on the
    backplane) and given its own retried job, so it cannot stall the others.
    """
    deadline = time.monotonic() + seconds
    held_back = _held_back(gateway)
    done = 0
    while time.monotonic() < deadline:
        claimed: list[int] = []
        try:
            outcome = _reconcile(
                gateway,
                lambda session: claim_waiting_payment(session=session, skip=held_back),
                claimed=claimed,
            )
        except Exception:
            if not claimed:
                raise  # the database itself is failing: rq retries the drain
            log.exception("payment #%s failed to reconcile; it gets a job of its own", claimed[0])
            held_back.add(claimed[0])
            _hold_back(gateway, claimed[0])
            # rq retries it with backoff (a deadlock or a dropped connection heals).
            enqueue_payment(gateway, claimed[0])
            continue
        if outcome is None:
            _recheck_if_held_elsewhere(gateway, held_back)
            return done, False
        faults.point("payment_committed")
        done += 1
    return done, True


def _recheck_if_held_elsewhere(gateway: Gateway, held_back: set[int]) -> None:
    """A payment is waiting that someone else (another drain, an operator assigning it)
    had locked when we looked: if they let it go uncredited no ack will wake a drain for
    it, so one looks again shortly."""
    if gateway.backplane.inline:
        return  # no queue: nothing runs later on its own (the payment sweep will)
    with gateway.db.session() as session:
        if not any_waiting(session=session, skip=held_back):
            return
    _enqueue_drain(gateway, f"recheck-{uuid.uuid4().hex[:8]}", delay=RECHECK_AFTER)


def _enqueue_drain(gateway: Gateway, reason: int | str, *, delay: timedelta | None = None) -> None:
    gateway.backplane.enqueue(
        drain_payments, job_id=f"drain-payments-{reason}", retries=RETRIES, delay=delay, fresh=True
    )


def _held_back(gateway: Gateway) -> set[int]:
    """Payments drains leave alone for now (each failed a drain less than HOLD_BACK ago)."""
    now = utcnow()
    held = gateway.backplane.scored(HELD_BACK, above=now.timestamp(), now=now)
    return {int(member) for member, _ in held}


def _hold_back(gateway: Gateway, payment_id: int) -> None:
    now = utcnow()
    with suppress(Exception):
        gateway.backplane.add_scored(
            HELD_BACK,
            str(payment_id),
            (now + HOLD_BACK).timestamp(),
            drop_below=now.timestamp(),
            ttl=HOLD_BACK,
            now=now,
        )


def enqueue_payment(gateway: Gateway, payment_id: int) -> None:
    """Queue a payment's reconciliation; if the queue is down the sweep will find it."""
    try:
        gateway.backplane.enqueue(
            process_payment, payment_id, job_id=job_id(payment_id), retries=RETRIES
        )
    except Exception:  # noqa: BLE001 - the payment is stored; sweep_payments re-enqueues it
        log.exception("could not enqueue %s", job_id(payment_id))


def sweep_payments(
    gateway: Gateway, *, now: datetime | None = None, stale_after: timedelta = STALE_AFTER
) -> int:
    """Re-enqueue payments stored but never reconciled; returns how many."""
    received_before = (now or utcnow()) - stale_after
    with gateway.db.session() as session:
        ids = waiting_payment_ids(session=session, received_before=received_before)
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
        stored = [
            intake.store_notice(session=session, notice=line.notice, raw=line.raw, now=now)
            for line in parsed.lines
        ]
    new = [s for s in stored if s is not None and s.created]
    statuses = {s.payment_id: s.status for s in new}
    for stored_new in new:
        if stored_new.status == PaymentStatus.RECEIVED:
            statuses[stored_new.payment_id] = reconcile(gateway, stored_new.payment_id).status
    unmatched = [i for i, status in statuses.items() if status == PaymentStatus.UNMATCHED]
    return StatementReport(
        new=len(new),
        known=len(stored) - len(new),
        credited=sum(s == PaymentStatus.CREDITED for s in statuses.values()),
        unmatched=len(unmatched),
        rejected=sum(s == PaymentStatus.REJECTED for s in statuses.values()),
        skipped=parsed.skipped,
        unmatched_ids=unmatched,
    )
