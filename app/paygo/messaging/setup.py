"""Wire messaging into an app: send after commit, and (without Redis) a sweeper thread.

After commit: `outbox.queue_message` notes each new row on its session; when that
session's transaction commits, the ids go to `jobs.dispatch_pending` (an rq job each, or
an inline send). A rollback forgets them. Callers only write rows.

Without Redis the web process starts, on its first request, a daemon thread that runs
the sweep every SMS_SWEEP_INTERVAL_SECONDS, the reminders hourly and the delivery-report
chase daily, so retries happen in `make run` too. It is not started under tests
(app.testing); tests call `start_sweeper` themselves.
"""

from __future__ import annotations

import logging
import threading
import weakref
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from paygo.extensions import Gateway
from paygo.messaging import jobs, outbox

log = logging.getLogger(__name__)

#: id(engine) -> the gateway owning it: a session knows its engine, not its app.
_GATEWAYS: dict[int, weakref.ref[Gateway]] = {}
_LISTENING = threading.Lock()
#: session.info key: ids committed, to dispatch once the connection is released.
_READY = "paygo.outbox.ready"
_listening = False


def init_app(app: Flask) -> None:
    """Dispatch committed outbox rows for this app; start a sweeper when jobs run inline."""
    gateway: Gateway = app.extensions["paygo"]
    for key in [k for k, ref in _GATEWAYS.items() if ref() is None]:
        _GATEWAYS.pop(key, None)  # apps gone (tests build many)
    for engine in gateway.db.engines:
        _GATEWAYS[id(engine)] = weakref.ref(gateway)
    _listen()
    if gateway.jobs.inline:
        started = threading.Event()

        @app.before_request
        def _start_sweeper_once() -> None:
            if not started.is_set() and not app.testing:
                started.set()
                app.extensions["paygo.sweeper"] = start_sweeper(app)


def _listen() -> None:
    global _listening
    with _LISTENING:
        if not _listening:
            event.listen(Session, "after_commit", _after_commit)
            event.listen(Session, "after_rollback", _after_rollback)
            event.listen(Session, "after_transaction_end", _after_transaction_end)
            _listening = True


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: the outer transaction may still roll back
    ids, claimed = outbox.take_new_ids(session)  # type: ignore[arg-type]
    if ids or claimed:
        ready = session.info.setdefault(_READY, ([], []))
        ready[0].extend(ids)
        ready[1].extend(claimed)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # Dispatch only once the committed transaction has given its connection back: an
    # inline send opens its own, and holding both would drain the pool under load.
    if transaction.parent is not None:
        return
    session.info.pop(outbox.CLAIM_ON_WRITE, None)  # it applies to one transaction only
    ready = session.info.pop(_READY, None)
    if not ready:
        return
    ids, claimed = ready
    bind = session.get_bind()
    ref = _GATEWAYS.get(id(bind))
    gateway = ref() if ref is not None else None
    if gateway is None or bind not in gateway.db.engines:
        log.warning(
            "messages %s committed on an engine with no gateway: left to the sweep",
            ids + [m.id for m in claimed],
        )
        return
    try:
        jobs.send_claimed(gateway, claimed)
        jobs.dispatch_pending(gateway, ids)
    except Exception:  # the commit has happened: never turn it into an error
        log.exception(
            "dispatching messages %s failed; the sweep will send them",
            ids + [m.id for m in claimed],
        )


def _after_rollback(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's rollback leaves the rest
        outbox.forget_new(session)  # type: ignore[arg-type]


class Sweeper(threading.Thread):
    """Runs the periodic messaging work in the web process when there is no Redis."""

    def __init__(self, app: Flask, interval: float) -> None:
        super().__init__(name="paygo-messages-sweeper", daemon=True)
        self.app = app
        self.interval = interval
        self.last_run: dict[str, datetime] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self.tick()
            if self._stop_event.wait(self.interval):
                return

    def tick(self) -> list[str]:
        """Run the periodic jobs that are due."""
        try:
            with self.app.app_context():
                gateway: Gateway = self.app.extensions["paygo"]
                return jobs.run_periodic(gateway, self.last_run)
        except Exception:
            log.exception("messages sweeper tick failed")
            return []

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish and wait for it."""
        self._stop_event.set()
        self.join(timeout)


def start_sweeper(app: Flask, interval: float | None = None) -> Sweeper:
    """Start the inline sweeper thread for `app`."""
    settings: Any = app.extensions["paygo"].settings
    sweeper = Sweeper(app, interval or settings.sms_sweep_interval_seconds)
    sweeper.start()
    return sweeper
