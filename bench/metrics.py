"""OpenPAYGO Metrics device-data requests per second and latency at 10,000 registered boxes,
against gunicorn and PostgreSQL on loopback, next to a bare Flask endpoint of the same server
that only parses the JSON body (this stack's ceiling here), measured in the same run.

Run from the repo root: ``.venv/bin/python bench/metrics.py`` (PostgreSQL on 127.0.0.1:5432
and Redis on 127.0.0.1:6379, as for the tests). It makes a scratch database with 10,000 boxes
(each with an account, a registered data format and a few issued codes; one box in
four has a code still to fetch, one in five asks for its active time), builds every request
beforehand with the reference library's ``MetricsRequestHandler`` (condensed, Recursive Data
Auth, the token count and six 10-minute rows of five readings: an hourly report), starts
gunicorn on a free loopback port, posts the requests from client threads in alternating
rounds with the bare endpoint, then stops the server and drops the database. Prints a table,
then as the last line one JSON object with the figures. Aim: at least 30% of the ceiling.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask, Response, request  # noqa: E402

from bench._scratch import free_port, scratch_database, scratch_redis  # noqa: E402

DD_PATH, BARE_PATH = "/openpaygo/metrics/dd", "/bench/json"
FORMAT = {
    "data_order": ["token_count", "active_until_timestamp_requested"],
    "historical_data_order": ["battery_v", "panel_v", "load_a", "energy_wh", "temp_c"],
    "historical_data_interval": -600,
    "variables": {"energy_wh": {"name": "Energy", "type": "float", "aggregation_method": "sum"}},
}
CODES_PER_BOX = 3


def bench_app() -> Flask:
    """The gateway as configured by the environment, plus a bare JSON-parsing endpoint."""
    from paygo import create_app

    app = create_app()

    @app.post(BARE_PATH)
    def bare() -> Response:
        request.get_json(force=True)
        return Response("{}", status=201, mimetype="application/json")

    return app


# Boxes -----------------------------------------------------------------------------------------


def load_boxes(env: dict[str, str], count: int) -> tuple[list[tuple[str, str]], int]:
    """Register `count` boxes with accounts and codes; their (serial, key) and the format id."""
    from paygo import create_app

    gateway = create_app(
        {"database_url": env["DATABASE_URL"], "redis_url": env["REDIS_URL"], "log_level": "WARNING"}
    ).extensions["paygo"]
    boxes = [(f"MTR{i:07d}", secrets.token_hex(16)) for i in range(count)]
    with gateway.db.transaction() as session:
        format_id = _fleet(session, gateway, boxes)
    gateway.db.dispose()
    return boxes, format_id


def _fleet(session: Any, gateway: Any, boxes: list[tuple[str, str]]) -> int:
    from sqlmodel import col, select

    from paygo import devices
    from paygo.metrics import store
    from paygo.metrics.formats import parse_data_format
    from paygo.models import Account, Customer, Device, MetricsBox, Token, utcnow
    from paygo.plans import create_plan

    rows = [
        devices.DeviceRow(
            i,
            serial,
            secrets.randbelow(10**9),
            key,
            CODES_PER_BOX * 2,
            1,
            False,
            "SHS-80",
            "1.0",
            None,
            False,
        )
        for i, (serial, key) in enumerate(boxes)
    ]
    devices.import_devices(session=session, keys=gateway.keys, rows=rows)
    plan = create_plan(session=session, name="Bench 80W", currency="KES", price_per_day=5000)
    found = {
        d.serial: d for d in session.exec(select(Device).where(col(Device.serial).like("MTR%")))
    }
    now = utcnow()
    for i, (serial, _) in enumerate(boxes):
        device = found[serial]
        device.entered_count = 0
        customer = Customer(
            name=f"Customer {i}", phone=f"+2547{20 + i // 10**6:02d}{i % 10**6:06d}"
        )
        session.add(customer)
        session.flush()
        assert customer.id is not None and plan.id is not None
        session.add(
            Account(
                number=f"{20_000_000 + i}",
                customer_id=customer.id,
                device_id=device.id,
                plan_id=plan.id,
                status="active",
                credit_until=now,
            )
        )
        # Each box has reported before (an hour ago), as boxes on hourly reports have.
        seen = now - timedelta(hours=1)
        session.add(MetricsBox(device_id=device.id, last_seen_at=seen, reported_token_count=0))
        session.add_all(
            Token(
                device_id=device.id,
                count=2 * n,
                type="add_time",
                days=1,
                value_raw=1,
                code=f"{secrets.randbelow(10**9):09d}",
            )
            for n in range(1, CODES_PER_BOX + 1)
        )
    return store.register_format(
        session=session, fmt=parse_data_format(FORMAT), actor="bench", now=now
    )


def build_requests(boxes: list[tuple[str, str]], format_id: int, rounds: int) -> list[bytes]:
    """Every request of the run, round by round over all boxes, made by the reference library."""
    from openpaygo.metrics_request import MetricsRequestHandler

    fmt = {**FORMAT, "id": format_id}
    start = int(time.time()) - 3600 * (rounds + 1)
    reading = {"battery_v": 12.6, "panel_v": 17.9, "load_a": 0.42, "energy_wh": 4.1, "temp_c": 31}
    bodies = []
    for r in range(rounds):
        for i, (serial, key) in enumerate(boxes):
            box = MetricsRequestHandler(serial, data_format=fmt, secret_key=key, auth_method="ra")
            box.set_request_count(r + 1)
            box.set_timestamp(start + 3600 * r)
            # One box in four has a code to fetch; one in five asks for its active time.
            box.set_data(
                {
                    "token_count": 2 * (CODES_PER_BOX - (i % 4 == 0)),
                    "active_until_timestamp_requested": i % 5 == 0 or None,
                }
            )
            box.set_historical_data([dict(reading) for _ in range(6)])
            bodies.append(box.get_condensed_request_payload().encode())
    return bodies


# The server ------------------------------------------------------------------------------------


@contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int, threads: int) -> Iterator[None]:
    """Serve the bench app on 127.0.0.1:port; stop it (and only it) at the end."""
    process = subprocess.Popen(
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
            "bench.metrics:bench_app()",
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
            if post(port, BARE_PATH, b"{}")[0] == 201:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 30 s")


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    """One JSON POST on a fresh connection (gunicorn's sync workers close each one)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# Load ------------------------------------------------------------------------------------------


class Recorder:
    """Latencies and errors, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors = 0
        self.codes = 0

    def add(self, seconds: float, ok: bool, codes: int) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.errors += 0 if ok else 1
            self.codes += codes


class Bodies:
    """The prepared requests, each handed out once across every thread and phase (or round
    and round again, for the bare endpoint, which stores nothing)."""

    def __init__(self, bodies: list[bytes], *, cycle: bool = False) -> None:
        self.bodies, self.cycle, self.next, self.lock = bodies, cycle, 0, threading.Lock()

    def take(self) -> bytes | None:
        with self.lock:
            if self.next >= len(self.bodies):
                if not self.cycle:
                    return None
                self.next = 0
            self.next += 1
            return self.bodies[self.next - 1]


def drive(
    port: int, bodies: Bodies, *, bare: bool, seconds: float, concurrency: int, recorder: Recorder
) -> float:
    """Post requests (or the same bodies to the bare endpoint) from threads; the time taken."""
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_client, args=(port, bodies, bare, stop_at, recorder))
        for _ in range(concurrency)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def _client(port: int, bodies: Bodies, bare: bool, stop_at: float, recorder: Recorder) -> None:
    while time.monotonic() < stop_at:
        body = bodies.take()
        if body is None:
            return
        began = time.perf_counter()
        status, answer = post(port, BARE_PATH if bare else DD_PATH, body)
        elapsed = time.perf_counter() - began
        codes = 0 if bare or status != 201 else len(json.loads(answer).get("tkl", []))
        recorder.add(elapsed, status == 201, codes)


def alternate(
    port: int, metrics: Bodies, bare: Bodies, *, seconds: float, rounds: int, concurrency: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ceiling and Metrics in alternating rounds, so a busy spell on the machine hits both."""
    totals = {"bare": (Recorder(), [0.0]), "metrics": (Recorder(), [0.0])}
    for _ in range(rounds):
        for name, source in (("bare", bare), ("metrics", metrics)):
            recorder, elapsed = totals[name]
            elapsed[0] += drive(
                port,
                source,
                bare=name == "bare",
                seconds=seconds / rounds,
                concurrency=concurrency,
                recorder=recorder,
            )
    return (_figures(*totals["bare"]), _figures(*totals["metrics"]))


def _figures(recorder: Recorder, elapsed: list[float]) -> dict[str, Any]:
    ordered = sorted(recorder.latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "requests": len(ordered),
        "requests_per_s": round(len(ordered) / elapsed[0], 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "errors": recorder.errors,
        "codes_sent": recorder.codes,
    }


def stored(url: str) -> tuple[int, int]:
    """(readings stored, boxes that reported), read from the scratch database."""
    import psycopg

    with psycopg.connect(url) as conn:
        readings = conn.execute("SELECT count(*) FROM device_data").fetchone()
        reported = conn.execute(
            "SELECT count(*) FROM metrics_boxes WHERE last_request_count IS NOT NULL"
        ).fetchone()
    assert readings is not None and reported is not None
    return int(readings[0]), int(reported[0])


def main() -> None:
    """Set up, measure the ceiling and Metrics, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase (max 120)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="above 1: gthread workers")
    parser.add_argument("--boxes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the phases")
    parser.add_argument("--reports", type=int, default=2, help="prepared requests per box")
    args = parser.parse_args()
    seconds = min(args.seconds, 120.0)
    with scratch_database() as db_url, scratch_redis() as redis_url:
        env = {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "PAYGO_ENV": "development",
            "LOG_LEVEL": "WARNING",
            "PAYGO_INSTANCE_PATH": "/tmp/paygo-bench",
        }
        began = time.monotonic()
        boxes, format_id = load_boxes(env, args.boxes)
        bodies = build_requests(boxes, format_id, args.reports)
        prepared = time.monotonic() - began
        # The warm-up takes the first requests; the bare endpoint gets the same bodies.
        metrics, bare = Bodies(bodies), Bodies(bodies, cycle=True)
        port = free_port()
        with gunicorn(env, port, args.workers, args.threads):
            drive(port, metrics, bare=False, seconds=1.0, concurrency=2, recorder=Recorder())
            ceiling, answered = alternate(
                port,
                metrics,
                bare,
                seconds=seconds,
                rounds=args.rounds,
                concurrency=args.concurrency,
            )
        readings, reported = stored(db_url)
    ratio = round(answered["requests_per_s"] / ceiling["requests_per_s"], 2)
    kind = "sync workers" if args.threads == 1 else f"gthread workers x {args.threads} threads"
    print(
        f"gunicorn {args.workers} {kind}, {args.concurrency} client threads, {args.boxes:,} "
        f"boxes ({prepared:.0f} s to register them and sign {len(bodies):,} requests), "
        f"{seconds:g} s per phase in {args.rounds} alternating rounds, PostgreSQL on "
        f"127.0.0.1, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'endpoint':<30}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, row in (("bare JSON parse (ceiling)", ceiling), ("Metrics device data", answered)):
        print(
            f"{name:<30}{row['requests']:>10}{row['requests_per_s']:>9}{row['p50_ms']:>9}"
            f"{row['p99_ms']:>9}{row['errors']:>8}"
        )
    print(
        f"Metrics throughput is {ratio:.0%} of the ceiling (aim: 30%); p99 "
        f"{answered['p99_ms']} ms; {answered['codes_sent']:,} codes sent; {readings:,} "
        f"readings stored from {reported:,} boxes"
    )
    print(
        json.dumps(
            {
                "bench": "metrics",
                "boxes": args.boxes,
                "workers": args.workers,
                "threads": args.threads,
                "concurrency": args.concurrency,
                "seconds": seconds,
                "ceiling": ceiling,
                "metrics": answered,
                "ratio": ratio,
                "readings_stored": readings,
                "aims_met": ratio >= 0.3 and answered["errors"] == 0,
            }
        )
    )


if __name__ == "__main__":
    main()
