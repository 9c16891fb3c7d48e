"""`paygo worker`: an rq worker, with its scheduler and our periodic jobs, in the app context.

rq forks a work horse per job. The horse must not reuse the parent's database sockets:
a connection opened by another process is replaced at checkout (paygo.db), and the
horse closes its own before it exits.

The periodic jobs (paygo.schedule) are registered on rq's CronScheduler and enqueued
by rq's scheduler process, which holds a lock per queue: with several workers, one of
them schedules. The worker talks to Redis on a connection of its own, with the longer
timeouts its blocking waits need (the app's backplane keeps REDIS_TIMEOUT_SECONDS).
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from rq import SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler

from paygo import schedule
from paygo.backplane.redis import RedisBackplane
from paygo.cli.context import current_app
from paygo.cli.output import fail
from paygo.gateway import Gateway


class AppScheduler(RQScheduler):
    """rq's scheduler, also enqueuing our periodic jobs when they are due."""

    periodic: schedule.Schedule | None
    queue_name: str
    _cron: CronScheduler | None = None

    def enqueue_scheduled_jobs(self) -> None:
        super().enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
        if self.acquired_locks and self.periodic is not None:
            self.cron.enqueue_jobs()

    @property
    def cron(self) -> CronScheduler:
        # Built lazily: the scheduler runs in a forked process with its own connection.
        if self._cron is None:
            assert self.periodic is not None
            self._cron = schedule.cron_scheduler(
                self.periodic, connection=self.connection, queue_name=self.queue_name
            )
        return self._cron


class AppWorker(Worker):
    """An rq worker that runs each job inside the Flask app context."""

    flask_app: Flask
    periodic: schedule.Schedule | None

    def perform_job(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> bool:
        gateway: Gateway = self.flask_app.extensions["paygo"]
        try:
            with self.flask_app.app_context():
                return bool(super().perform_job(job, queue, *args, **kwargs))
        finally:
            if getattr(self, "_is_horse", False):
                gateway.db.dispose()  # close this horse's connections before it exits

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        # rq's own method, with our scheduler class (rq offers no hook for it).
        scheduler = AppScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level or self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        scheduler.periodic, scheduler.queue_name = self.periodic, self.queues[0].name
        self.scheduler = scheduler
        scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        if not scheduler.acquired_locks:
            return
        if not burst:
            scheduler.start()  # type: ignore[no-untyped-call]
            return
        try:
            scheduler.register_birth()
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()  # type: ignore[no-untyped-call]
            scheduler.register_death()


class AppSimpleWorker(SimpleWorker, AppWorker):
    """The same worker running jobs in its own process: no fork and no new database
    connection per job, several times the throughput; a job that crashes the process
    takes the worker with it (the process manager restarts it, the sweeps re-enqueue)."""


def make_worker(
    app: Flask, *, name: str | None = None, periodic: bool = False, fork: bool = True
) -> AppWorker:
    """Build a worker on the app's queue; `periodic` adds the sweeps, reminders and chase."""
    gateway: Gateway = app.extensions["paygo"]
    backplane = gateway.backplane
    if not isinstance(backplane, RedisBackplane):
        raise RuntimeError("REDIS_URL is not set")
    cls = AppWorker if fork else AppSimpleWorker
    worker = cls([backplane.queue.name], connection=backplane.worker_connection(), name=name)
    worker.flask_app = app
    worker.periodic = gateway.schedule if periodic else None
    return worker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
@click.option(
    "--no-periodic",
    is_flag=True,
    help="Do not schedule the sweep, reminders and daily reconciliation.",
)
@click.option(
    "--fork/--no-fork",
    default=True,
    show_default=True,
    help="Fork a work horse per job (rq's default isolation) or run jobs in-process.",
)
def worker(burst: bool, no_periodic: bool, fork: bool) -> None:
    """Run background jobs from Redis (needs REDIS_URL)."""
    app = current_app()
    if app.extensions["paygo"].backplane.inline:
        fail("REDIS_URL is not set: without Redis, jobs run inline in the web process")
    make_worker(app, periodic=not no_periodic, fork=fork).work(burst=burst, with_scheduler=True)


commands = [worker]
