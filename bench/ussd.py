"""USSD hops per second and latency: whole sessions against gunicorn, PostgreSQL and Redis on
loopback, next to the same server answering a bare `CON hello` (this stack's ceiling here).

Run from the repo root: ``.venv/bin/python bench/ussd.py`` (PostgreSQL on 127.0.0.1:5432 and
Redis on 127.0.0.1:6379, as for the tests). It makes a scratch database and takes a free Redis
database number, starts gunicorn on a free loopback port, drives sessions for a bounded time,
then stops the server and drops the database. Prints a table, then as the last line one JSON
object with the figures. Aim: USSD throughput at least half the ceiling, p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask, Response  # noqa: E402

from bench._scratch import free_port, scratch_database, scratch_redis  # noqa: E402

USSD_PATH, HELLO_PATH = "/ussd/africastalking", "/bench/hello"
#: Paths a customer takes through the menu (inputs after the dial).
PATHS = (["1"], ["2", "1"], ["3", "500"], ["2", "2", "98"], ["4", "1"])
MAX_HOPS_PER_PHASE = 200_000


def apologies() -> tuple[str, ...]:
    """The USSD flow's apology screen in every language: a hop that shows it failed."""
    from paygo.conversations.actions import ACTIONS
    from paygo.conversations.service import USSD_FLOW, constants, flows_dir
    from paygo.conversations.validation import load_flows
    from paygo.settings import load_settings

    settings = load_settings(environ={})
    flow = load_flows(flows_dir(settings), ACTIONS, constants(settings))[USSD_FLOW]
    return tuple("END " + flow.string("sorry", lang) for lang in flow.languages)


def bench_app() -> Flask:
    """The gateway as configured by the environment, plus the bare `CON hello` route."""
    from paygo import create_app

    app = create_app()

    @app.post(HELLO_PATH)
    def hello() -> Response:
        return Response("CON hello", mimetype="text/plain")

    return app


# Customers ------------------------------------------------------------------------------------


def load_customers(env: dict[str, str], count: int) -> list[str]:
    """Customers with one account and a few codes each; returns their phones."""
    from paygo import create_app
    from paygo.crypto import new_device_key
    from paygo.models import Token
    from paygo.plans import create_plan

    gateway = create_app(
        {"database_url": env["DATABASE_URL"], "redis_url": env["REDIS_URL"], "log_level": "WARNING"}
    ).extensions["paygo"]
    phones = [f"+2547{10 + i // 1_000_000:02d}{i % 1_000_000:06d}" for i in range(count)]
    with gateway.db.transaction() as session:
        plan = create_plan(
            session=session,
            name="Bench 80W",
            currency="KES",
            price_per_day=5000,
            min_payment=5000,
            total_price=1500000,
        )
        for i, phone in enumerate(phones):
            account = _account(session, gateway, plan, phone, new_device_key(), i)
            session.add_all(
                [
                    Token(
                        device_id=account.device_id,
                        account_id=account.id,
                        count=n,
                        type="add_time",
                        days=n,
                        value_raw=n,
                        code=f"{secrets.randbelow(10**9):09d}",
                    )
                    for n in range(1, 6)
                ]
            )
    gateway.db.dispose()
    return phones


def _account(session: Any, gateway: Any, plan: Any, phone: str, key: str, i: int) -> Any:
    from paygo import accounts, devices

    serial = f"BENCH{i:07d}"
    devices.add_device(
        session=session,
        keys=gateway.keys,
        serial=serial,
        key_hex=key,
        starting_code=secrets.randbelow(10**9),
    )
    return accounts.create_account(
        session=session, name=f"Customer {i}", phone=phone, serial=serial, plan=plan
    )


# The server ------------------------------------------------------------------------------------


@contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int, threads: int) -> Iterator[None]:
    """Serve the bench app on 127.0.0.1:port; stop it (and only it) at the end."""
    process = subprocess.Popen(
        # The running interpreter's own gunicorn: works from any venv or installed package.
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            "bench.ussd:bench_app()",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        _wait_ready(port, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited while starting")
        try:
            status, _ = post(port, HELLO_PATH, {})
            if status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 30 s")


def post(port: int, path: str, form: dict[str, str]) -> tuple[int, str]:
    """One form POST on a fresh connection (gunicorn's sync workers close each one)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            path,
            body=urllib.parse.urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


# Load ------------------------------------------------------------------------------------------


class Recorder:
    """Latencies and errors, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors = 0

    def add(self, seconds: float, ok: bool) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.errors += 0 if ok else 1


def drive(
    port: int,
    phones: list[str],
    *,
    hello: bool,
    seconds: float,
    concurrency: int,
    recorder: Recorder,
) -> float:
    """Run whole sessions (or bare hellos) from `concurrency` threads; return the time taken."""
    sessions = itertools.count(int(time.monotonic() * 1000) * 1000)
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_client, args=(port, phones, hello, stop_at, sessions, recorder))
        for _ in range(concurrency)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def alternate(
    port: int, phones: list[str], *, seconds: float, rounds: int, concurrency: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ceiling and USSD in alternating rounds, so a busy spell on the machine hits both."""
    totals = {"hello": (Recorder(), [0.0]), "ussd": (Recorder(), [0.0])}
    for _ in range(rounds):
        for name in ("hello", "ussd"):
            recorder, elapsed = totals[name]
            elapsed[0] += drive(
                port,
                phones,
                hello=name == "hello",
                seconds=seconds / rounds,
                concurrency=concurrency,
                recorder=recorder,
            )
    return (
        _figures(totals["hello"][0], totals["hello"][1][0]),
        _figures(totals["ussd"][0], totals["ussd"][1][0]),
    )


def _client(
    port: int,
    phones: list[str],
    hello: bool,
    stop_at: float,
    sessions: Iterator[int],
    recorder: Recorder,
) -> None:
    while time.monotonic() < stop_at and len(recorder.latencies) < MAX_HOPS_PER_PHASE:
        n = next(sessions)
        inputs = PATHS[n % len(PATHS)]
        form = {
            "sessionId": f"ATUid_bench_{os.getpid()}_{n}",
            "serviceCode": "*384*4321#",
            "phoneNumber": phones[n % len(phones)],
            "networkCode": "63902",
            "text": "",
        }
        for depth in range(len(inputs) + 1):
            form["text"] = "*".join(inputs[:depth])
            began = time.perf_counter()
            status, body = post(port, HELLO_PATH if hello else USSD_PATH, form)
            ok = (
                status == 200
                and body.startswith(("CON ", "END "))
                and len(body) <= 182
                and body not in APOLOGIES
            )
            recorder.add(time.perf_counter() - began, ok)
            if body.startswith("END ") or time.monotonic() >= stop_at:
                break


def _figures(recorder: Recorder, elapsed: float) -> dict[str, Any]:
    ordered = sorted(recorder.latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "hops": len(ordered),
        "hops_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "errors": recorder.errors,
    }


#: Filled in main(): the apology screens, each counted as an error.
APOLOGIES: tuple[str, ...] = ()


def main() -> None:
    """Set up, measure the ceiling and USSD, print the table and the JSON line."""
    global APOLOGIES
    APOLOGIES = apologies()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase (max 60)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="above 1: gthread workers")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the phases")
    args = parser.parse_args()
    seconds = min(args.seconds, 60.0)
    with scratch_database() as db_url, scratch_redis() as redis_url:
        env = {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "PAYGO_ENV": "development",
            "LOG_LEVEL": "WARNING",
            "PAYGO_INSTANCE_PATH": "/tmp/paygo-bench",
        }
        phones = load_customers(env, args.customers)
        port = free_port()
        with gunicorn(env, port, args.workers, args.threads):
            drive(
                port,
                phones,
                hello=False,
                seconds=1.0,
                concurrency=2,  # warm up
                recorder=Recorder(),
            )
            ceiling, ussd = alternate(
                port, phones, seconds=seconds, rounds=args.rounds, concurrency=args.concurrency
            )
    ratio = round(ussd["hops_per_s"] / ceiling["hops_per_s"], 2)
    kind = "sync workers" if args.threads == 1 else f"gthread workers x {args.threads} threads"
    print(
        f"gunicorn {args.workers} {kind}, {args.concurrency} client threads, "
        f"{seconds:g} s per phase in {args.rounds} alternating rounds, PostgreSQL + Redis "
        f"on 127.0.0.1, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'endpoint':<28}{'hops':>8}{'hops/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, row in (("bare CON hello (ceiling)", ceiling), ("USSD sessions", ussd)):
        print(
            f"{name:<28}{row['hops']:>8}{row['hops_per_s']:>10}{row['p50_ms']:>9}"
            f"{row['p99_ms']:>9}{row['errors']:>8}"
        )
    print(
        f"USSD throughput is {ratio:.0%} of the ceiling (aim: 50%); "
        f"p99 {ussd['p99_ms']} ms (aim: under 100 ms)"
    )
    print(
        json.dumps(
            {
                "bench": "ussd",
                "workers": args.workers,
                "threads": args.threads,
                "concurrency": args.concurrency,
                "seconds": seconds,
                "ceiling": ceiling,
                "ussd": ussd,
                "ratio": ratio,
                "aims_met": ratio >= 0.5 and ussd["p99_ms"] < 100,
            }
        )
    )


if __name__ == "__main__":
    main()
