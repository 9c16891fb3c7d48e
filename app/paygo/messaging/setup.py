"""Without Redis, a sweeper thread in the web process runs messaging's periodic work.

It starts on the web process's first request and runs the sweep every
SMS_SWEEP_INTERVAL_SECONDS, the reminders hourly and the delivery-report chase daily, so
retries happen in `make run` too. It is not started under tests (app.testing); tests
call `start_sweeper` themselves. (Sending after a commit is not done here: each writer
calls `paygo.messaging.sending.send_committed` itself.)
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from flask import Flask

from paygo.extensions import Gateway
from paygo.messaging import jobs

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Start a sweeper thread on the first request when jobs run inline (no Redis)."""
    gateway: Gateway = app.extensions["paygo"]
    if gateway.jobs.inline:
        started = threading.Event()

        @app.before_request
        def _start_sweeper_once() -> None:
            if not started.is_set() and not app.testing:
                started.set()
                app.extensions["paygo.sweeper"] = start_sweeper(app)


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
