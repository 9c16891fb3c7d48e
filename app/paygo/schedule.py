"""Every periodic job of the gateway, and what runs them on time.

- The jobs (`periodic_jobs`): the outbox sweep (every SMS_SWEEP_INTERVAL_SECONDS), the
  payment sweep (every 2 minutes), reminders (hourly), the delivery-report chase (daily,
  03:30 UTC) and, when the backplane is the database, pruning its expired keys (hourly).
  Each is a function of the gateway and the time it runs at, so a test runs it at any
  time it likes.
- With Redis, rq's scheduler enqueues them (`cron_scheduler`, started by `paygo worker`)
  as `run_periodic` jobs; with several workers, one of them schedules.
- Without Redis, a `Ticker` thread in the web process runs those that are due, in the app
  context (`Schedule.run_due`), from the first request on.

Sweeps make up for lost work: the database is the source of truth, and a flushed Redis,
a dead worker or a writer that died before sending loses nothing but time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rq.cron import CronScheduler

from paygo.backplane import Backplane
from paygo.gateway import Gateway, current_gateway
from paygo.messaging import reminders, reports, sending
from paygo.models import utcnow
from paygo.payments import tasks
from paygo.settings import Settings

if TYPE_CHECKING:  # types only: the web app and the worker have them loaded
    from flask import Flask
    from redis import Redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    """Work that runs on a schedule: every `every`, or on a cron line under rq."""

    name: str
    run: Callable[[Gateway, datetime], Any]
    every: timedelta
    cron: str | None = None
    timeout: int = 900


def _sweep_messages(gateway: Gateway, now: datetime) -> dict[str, int]:
    return sending.sweep(gateway, now=now)


def _write_reminders(gateway: Gateway, now: datetime) -> int:
    return len(reminders.write_due(gateway, now=now))


def _chase_reports(gateway: Gateway, now: datetime) -> dict[str, int]:
    counts = reports.chase(gateway, now=now)
    return counts | sending.sweep(gateway, now=now)


def _sweep_payments(gateway: Gateway, now: datetime) -> int:
    return tasks.sweep_payments(gateway, now=now)


def _prune_backplane(gateway: Gateway, now: datetime) -> int:
    return gateway.backplane.prune(now=now)


def periodic_jobs(settings: Settings, backplane: Backplane) -> tuple[Periodic, ...]:
    """The schedule of this install."""
    jobs = [
        Periodic(
            "messages-sweep",
            _sweep_messages,
            timedelta(seconds=settings.sms_sweep_interval_seconds),
        ),
        Periodic("messages-reminders", _write_reminders, timedelta(hours=1)),
        Periodic("messages-reconcile", _chase_reports, timedelta(days=1), cron="30 3 * * *"),
        # A payment whose job was lost (Redis restarted, a worker killed before it started).
        Periodic("payments-sweep", _sweep_payments, timedelta(minutes=2)),
    ]
    if not backplane.expires_by_itself:
        jobs.append(Periodic("backplane-prune", _prune_backplane, timedelta(hours=1)))
    return tuple(jobs)


class Schedule:
    """The periodic jobs of one app, and when each last ran in this process."""

    def __init__(self, jobs: Iterable[Periodic]) -> None:
        self.jobs = {job.name: job for job in jobs}
        self.last_run: dict[str, datetime] = {}
        #: The thread running them in the web process, once started (no Redis).
        self.ticker: Ticker | None = None

    def due(self, now: datetime) -> list[Periodic]:
        """The jobs whose time has come at `now`."""
        return [
            job
            for job in self.jobs.values()
            if job.name not in self.last_run or now - self.last_run[job.name] >= job.every
        ]

    def run_due(self, gateway: Gateway, *, now: datetime) -> list[str]:
        """Run here, one after another, each job due at `now`; the names of those run."""
        ran = []
        for job in self.due(now):
            self.last_run[job.name] = now
            try:
                job.run(gateway, now)
            except Exception:
                log.exception("periodic job %s failed", job.name)
            ran.append(job.name)
        return ran


def run_periodic(name: str) -> Any:
    """rq job: run the periodic job called `name`, now (rq's scheduler enqueues it)."""
    gateway = current_gateway()
    return gateway.schedule.jobs[name].run(gateway, utcnow())


def cron_scheduler(schedule: Schedule, *, connection: Redis, queue_name: str) -> CronScheduler:
    """rq's cron scheduler with every periodic job registered on `queue_name`."""
    cron = CronScheduler(connection=connection)
    for job in schedule.jobs.values():
        cron.register(
            run_periodic,
            queue_name,
            args=(job.name,),
            name=job.name,
            interval=None if job.cron else max(1, round(job.every.total_seconds())),
            cron=job.cron,
            job_timeout=job.timeout,
        )
    return cron


class Ticker(threading.Thread):
    """Without Redis: runs the app's due periodic jobs every `interval` seconds."""

    def __init__(
        self, app: Flask, *, interval: float, clock: Callable[[], datetime] = utcnow
    ) -> None:
        super().__init__(name="paygo-schedule", daemon=True)
        self.app = app
        self.interval = interval
        self.clock = clock
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self.tick()
            if self._stop_event.wait(self.interval):
                return

    def tick(self) -> list[str]:
        """Run the jobs due by the ticker's clock; the names of those run."""
        try:
            with self.app.app_context():
                gateway = current_gateway()
                return gateway.schedule.run_due(gateway, now=self.clock())
        except Exception:
            log.exception("schedule tick failed")
            return []

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the thread to finish and wait for it."""
        self._stop_event.set()
        self.join(timeout)


def init_app(app: Flask, gateway: Gateway) -> None:
    """Without Redis, start a Ticker on the first request (not under tests: they tick)."""
    if not gateway.backplane.inline:
        return
    started = threading.Lock()

    @app.before_request
    def _start_ticker_once() -> None:
        if gateway.schedule.ticker is None and not app.testing and started.acquire(False):
            ticker = Ticker(app, interval=gateway.settings.sms_sweep_interval_seconds)
            gateway.schedule.ticker = ticker
            ticker.start()
