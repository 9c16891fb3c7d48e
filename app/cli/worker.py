"""`paygo worker`: an rq worker (with its scheduler) running jobs in the app context."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from rq import Worker
from rq.job import Job
from rq.queue import Queue

from app.cli.output import fail
from app.extensions import current_gateway


class AppWorker(Worker):
    """An rq worker that runs each job inside the Flask app context."""

    flask_app: Flask

    def perform_job(self, job: Job, queue: Queue) -> bool:
        with self.flask_app.app_context():
            return bool(super().perform_job(job, queue))


def make_worker(app: Flask, *, name: str | None = None) -> AppWorker:
    """Build a worker on the app's queue."""
    gateway = app.extensions["paygo"]
    if gateway.jobs.queue is None:
        raise RuntimeError("REDIS_URL is not set")
    worker = AppWorker([gateway.jobs.queue], connection=gateway.redis, name=name)
    worker.flask_app = app
    return worker


@click.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
@with_appcontext
def worker(burst: bool) -> None:
    """Run background jobs from Redis (needs REDIS_URL)."""
    if current_gateway().jobs.queue is None:
        fail("REDIS_URL is not set: without Redis, jobs run inline in the web process")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    make_worker(app).work(burst=burst, with_scheduler=True)


commands = [worker]
