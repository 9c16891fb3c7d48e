"""`paygo worker --no-fork` runs jobs in its own process; the default forks per job."""

from __future__ import annotations

import os

from flask import Flask
from rq.job import Job

from paygo.cli.worker import make_worker
from tests.queue_helpers import redis_of


def report_pid() -> int:
    """A job that says which process ran it."""
    return os.getpid()


def _pid_of_job(app: Flask, *, fork: bool) -> int:
    gateway = app.extensions["paygo"]
    gateway.backplane.enqueue(report_pid, job_id=f"pid-{fork}")
    make_worker(app, fork=fork).work(burst=True, with_scheduler=False)
    result = Job.fetch(f"pid-{fork}", connection=redis_of(gateway)).return_value()
    assert isinstance(result, int)
    return result


def test_no_fork_worker_runs_jobs_in_its_own_process(redis_app: Flask) -> None:
    assert _pid_of_job(redis_app, fork=False) == os.getpid()


def test_default_worker_forks_a_process_per_job(redis_app: Flask) -> None:
    assert _pid_of_job(redis_app, fork=True) != os.getpid()
