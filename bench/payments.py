"""M-Pesa confirmations against the real stack: gunicorn, PostgreSQL, Redis and rq workers.

Run from the repo root: ``.venv/bin/python bench/payments.py``. It creates a private
PostgreSQL database (dropped at the end) and takes a free Redis database number (the test
suite's lock protocol), seeds accounts, starts gunicorn and `paygo worker` processes on
127.0.0.1, then posts 5,000 Daraja confirmations from many concurrent clients: 10% exact
duplicates, 5% with a mistyped account number. It prints acknowledgements per second, the
p50/p99 acknowledgement latency, the time until every payment has its token in the outbox,
and the count check (payments, credits, tokens, messages; zero double credits). It also
prints the CPU the web server, the workers and PostgreSQL spent per acknowledgement or
payment, and the load average, so a run on a busy machine can still be read. Loopback
only; bounded in count and time; everything it started is stopped. The last line is one
JSON object with the figures.

By default the clients together post 100 a second on a fixed schedule (open loop): the
5,000 arrive within 50 s, inside the 60 s in which every token must be in the outbox,
and each latency runs from when its post was due, so a stall is counted, not hidden by
posting later. BENCH_RATE=200 doubles that (more than two cores can credit as it
arrives). BENCH_RATE=0 posts as fast as answers come back (closed loop): that measures
capacity, and its latency is then the clients' count divided by the throughput. The
workers run at nice 10, as the web process has priority on a machine they share (on
separate machines or dynos this changes nothing).

Settings (environment): BENCH_PAYMENTS, BENCH_CLIENTS, BENCH_RATE, BENCH_WEB_WORKERS x
BENCH_WEB_THREADS, BENCH_RQ_WORKERS, BENCH_WORKER (no-fork or fork), BENCH_WORKER_NICE,
BENCH_OUTBOX_DEADLINE, BENCH_WARM_UP (posts per client before timing), BENCH_WORKER_IDLE
(workers under SCHED_IDLE), BENCH_TRACE (also print the 40 slowest posts: due time, ms).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import requests  # noqa: E402

from bench._scratch import free_port, scratch_database, scratch_redis  # noqa: E402
from paygo import accountnumbers, accounts, devices, plans  # noqa: E402
from paygo.crypto import KeyBox  # noqa: E402
from paygo.db import Database  # noqa: E402

TOTAL = int(os.environ.get("BENCH_PAYMENTS", "5000"))
DUPLICATE_SHARE = 0.10
TYPO_SHARE = 0.05
ACCOUNTS = 1000
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
# Posts a second across all clients (0: each client posts as fast as it is answered).
RATE = float(os.environ.get("BENCH_RATE", "100"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
WEB_THREADS = int(os.environ.get("BENCH_WEB_THREADS", "8"))
RQ_WORKERS = int(os.environ.get("BENCH_RQ_WORKERS", "2"))
# "no-fork": `paygo worker --no-fork`, as the Procfile runs it (jobs in the worker process);
# "fork": `paygo worker` forking a horse, with fresh connections, per job (rq's default).
WORKER_KIND = os.environ.get("BENCH_WORKER", "no-fork")
# Optionally run the workers below the web processes' priority (acknowledgements first).
WORKER_NICE = int(os.environ.get("BENCH_WORKER_NICE", "10"))
#: Posts per client before the timed run (zero amounts: stored as rejected, never credited).
WARM_UP = int(os.environ.get("BENCH_WARM_UP", "20"))
OUTBOX_DEADLINE = float(os.environ.get("BENCH_OUTBOX_DEADLINE", "180"))  # then give up, say so
TOKEN = "bench-" + secrets.token_hex(8)
MASTER_KEY = "bench-master-key-0123456789"
AMOUNT = "150"  # KES: three days at KES 50 a day, one code each


TRACE: list[tuple[float, float]] = []


@dataclass(frozen=True)
class Load:
    bodies: list[dict[str, Any]]  # in posting order, duplicates included
    unique: int
    typos: int


def seed(url: str) -> list[tuple[str, str]]:
    """Create ACCOUNTS accounts; return (account number, payer MSISDN) pairs."""
    database, keys = Database(url), KeyBox(MASTER_KEY)
    pairs = []
    with database.transaction() as session:
        plan = plans.create_plan(session=session, name="Bench", currency="KES", price_per_day=5000)
        for i in range(ACCOUNTS):
            serial = f"BENCH{i:06d}"
            devices.add_device(
                session=session,
                keys=keys,
                serial=serial,
                key_hex=secrets.token_hex(16),
                starting_code=secrets.randbelow(10**9),
            )
            phone = f"+2547110{i:05d}"
            account = accounts.create_account(
                session=session, name=f"Customer {i}", phone=phone, serial=serial, plan=plan
            )
            pairs.append((account.number, phone.lstrip("+")))
    database.dispose()
    return pairs


def typo(number: str, rng: random.Random) -> str:
    """One digit of the body changed: the check digit no longer fits."""
    position = rng.randrange(len(number) - 1)
    digit = rng.choice([d for d in "0123456789" if d != number[position]])
    wrong = number[:position] + digit + number[position + 1 :]
    assert not accountnumbers.is_valid(wrong)
    return wrong


def make_load(pairs: list[tuple[str, str]], rng: random.Random) -> Load:
    """TOTAL confirmation bodies: 10% exact duplicates, 5% mistyped references."""
    duplicates = int(TOTAL * DUPLICATE_SHARE)
    unique, typos = TOTAL - duplicates, int(TOTAL * TYPO_SHARE)
    bodies = []
    for i in range(unique):
        number, msisdn = rng.choice(pairs)
        bodies.append(
            {
                "TransactionType": "Pay Bill",
                "TransID": f"BEN{i:07d}",
                "TransTime": "20261120101502",
                "TransAmount": AMOUNT,
                "BusinessShortCode": "600638",
                "BillRefNumber": typo(number, rng) if i < typos else number,
                "InvoiceNumber": "",
                "OrgAccountBalance": "",
                "ThirdPartyTransID": "",
                "MSISDN": msisdn,
                "FirstName": "BENCH",
                "MiddleName": "",
                "LastName": "",
            }
        )
    bodies += [dict(b) for b in rng.sample(bodies, duplicates)]
    rng.shuffle(bodies)
    return Load(bodies=bodies, unique=unique, typos=typos)


def environment(db_url: str, redis_url: str, instance: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYGO_FAULT",))}
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        PAYGO_ENV="development",
        PAYGO_MASTER_KEY=MASTER_KEY,
        SECRET_KEY="bench-secret-key-0123456789",
        MPESA_CALLBACK_TOKEN=TOKEN,
        PAYGO_INSTANCE_PATH=instance,
        LOG_LEVEL="WARNING",
        SMS_PROVIDER="console",
    )
    return env


@contextmanager
def services(env: dict[str, str], port: int) -> Iterator[list[int]]:
    """gunicorn and the rq workers, each in its own process group, stopped afterwards."""
    bin_dir = Path(sys.executable).parent
    commands = [
        [
            str(bin_dir / "gunicorn"),
            "--workers",
            str(WEB_WORKERS),
            "--threads",
            str(WEB_THREADS),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ]
    ]
    worker = [str(bin_dir / "paygo"), "worker", f"--{WORKER_KIND}"]
    commands += [worker for _ in range(RQ_WORKERS)]
    processes = [
        subprocess.Popen(
            c,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=None if i == 0 else _lower_priority,
        )
        for i, c in enumerate(commands)
    ]
    try:
        wait_healthy(port)
        yield [process.pid for process in processes]  # each the id of its process group
    finally:
        for process in processes:
            _stop(process)


def _proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) of every process."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    yield int(entry), handle.read().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue


def cpu_seconds(groups: list[int], database: str) -> dict[str, float]:
    """CPU used so far by the web server, the workers (their reaped children included)
    and the PostgreSQL backends serving the bench database."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"web": 0.0, "workers": 0.0, "postgres": 0.0}
    for pid, fields in _proc_stats():
        # fields[2] is the process group; [11:15] utime, stime, cutime, cstime in ticks.
        seconds = sum(int(f) for f in fields[11:15]) / tick
        if int(fields[2]) == groups[0]:
            used["web"] += seconds
        elif int(fields[2]) in groups[1:]:
            used["workers"] += seconds
        elif _is_backend_of(pid, database):
            used["postgres"] += seconds
    return used


def _is_backend_of(pid: int, database: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return f" {database} ".encode() in handle.read()
    except OSError:
        return False


def _lower_priority() -> None:
    if os.environ.get("BENCH_WORKER_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    os.nice(WORKER_NICE)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                return
        except requests.RequestException:  # still booting
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not become healthy within 60 s")


def post_all(port: int, bodies: list[dict[str, Any]]) -> tuple[list[float], int, float]:
    """Post every body from CLIENTS clients; (latencies in ms, failures, wall seconds).

    Each client keeps one HTTP/1.1 connection (http.client: the load generator shares
    the machine's two cores with what it measures, so it should cost little). With RATE
    set, the clients together post RATE a second on a fixed schedule, and each latency
    runs from when the post was due, so a stall is not hidden by posting later.
    """
    path = f"/payments/mpesa/{TOKEN}/confirmation"
    encoded = [json.dumps(body).encode() for body in bodies]
    chunks = [encoded[i::CLIENTS] for i in range(CLIENTS)]
    headers = {"Content-Type": "application/json"}
    start = time.perf_counter()

    def client(index: int) -> tuple[list[float], int]:
        latencies, failures = [], 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for n, body in enumerate(chunks[index]):
                due = start + (n * CLIENTS + index) / RATE if RATE else time.perf_counter()
                time.sleep(max(0.0, due - time.perf_counter()))
                conn.request("POST", path, body=body, headers=headers)
                reply = conn.getresponse()
                answer = reply.read()
                latencies.append((time.perf_counter() - due) * 1000)
                if os.environ.get("BENCH_TRACE"):
                    TRACE.append((due - start, latencies[-1]))
                if reply.status != 200 or json.loads(answer).get("ResultCode") != 0:
                    failures += 1
        finally:
            conn.close()
        return latencies, failures

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    wall = time.perf_counter() - start
    return [ms for r in results for ms in r[0]], sum(r[1] for r in results), wall


def warm_up(port: int, template: dict[str, Any]) -> None:
    """Bring every server thread and its connections up before anything is timed.

    WARM_UP posts per client of confirmations with a zero amount: each goes through the
    whole acknowledgement (read, insert, reply) but is stored as rejected, so it credits
    nothing and wakes no worker. They are left out of the count check.
    """
    path = f"/payments/mpesa/{TOKEN}/confirmation"

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for n in range(WARM_UP):
                body = dict(template, TransID=f"WARM{index:03d}{n:04d}", TransAmount="0")
                conn.request(
                    "POST",
                    path,
                    body=json.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                conn.getresponse().read()
        finally:
            conn.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    time.sleep(1.0)


def wait_for_outbox(db_url: str, expected: int, started: float) -> float | None:
    """Seconds from the first post until `expected` receipts are in the outbox."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.perf_counter() - started < OUTBOX_DEADLINE:
            row = conn.execute(
                "SELECT count(*) FROM outbound_messages WHERE dedupe_key LIKE 'payment:%'"
            ).fetchone()
            if row and row[0] >= expected:
                return time.perf_counter() - started
            time.sleep(0.2)
    return None


def count_check(db_url: str, load: Load) -> dict[str, Any]:
    """What the database holds, against what the load should have produced."""
    queries = {
        "payments": "SELECT count(*) FROM payments WHERE provider_txn_id NOT LIKE 'WARM%'",
        "credited": "SELECT count(*) FROM payments WHERE status = 'credited'",
        "tokens": "SELECT count(*) FROM tokens",
        "messages": "SELECT count(*) FROM outbound_messages WHERE dedupe_key LIKE 'payment:%'",
        "double_credits": "SELECT count(*) FROM (SELECT payment_id FROM tokens "
        "GROUP BY payment_id HAVING count(*) > 1) AS twice",
        "money_credited": "SELECT coalesce(sum(total_paid), 0) FROM accounts",
    }
    with psycopg.connect(db_url, autocommit=True) as conn:
        found = {k: int(conn.execute(q).fetchone()[0]) for k, q in queries.items()}  # type: ignore[index]
        rules: dict[Any, int] = dict(
            conn.execute(
                "SELECT match_rule, count(*) FROM payments WHERE provider_txn_id NOT LIKE 'WARM%' "
                "GROUP BY match_rule"
            ).fetchall()
        )
    expected = {
        "payments": load.unique,
        "credited": load.unique,
        "tokens": load.unique,
        "messages": load.unique,
        "double_credits": 0,
        "money_credited": load.unique * int(AMOUNT) * 100,
    }
    return {
        "found": found,
        "expected": expected,
        "ok": found == expected,
        "rules": {str(k): v for k, v in rules.items()},
    }


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=1000)[int(share * 1000) - 1]


def main() -> None:
    rng = random.Random(20261120)
    load_before = os.getloadavg()[0]
    with (
        scratch_database() as db_url,
        scratch_redis() as redis_url,
        tempfile.TemporaryDirectory() as instance,
    ):
        load = make_load(seed(db_url), rng)
        port, database = free_port(), db_url.rsplit("/", 1)[1]
        with services(environment(db_url, redis_url, instance), port) as groups:
            warm_up(port, load.bodies[0])
            idle = cpu_seconds(groups, database)
            started = time.perf_counter()
            latencies, failures, wall = post_all(port, load.bodies)
            posted = cpu_seconds(groups, database)
            outbox_s = wait_for_outbox(db_url, load.unique, started)
            done = cpu_seconds(groups, database)
            load_during = os.getloadavg()[0]
        check = count_check(db_url, load)
    figures = {
        "posted": len(load.bodies),
        "unique": load.unique,
        "typos": load.typos,
        "clients": CLIENTS,
        "rate": RATE or "max",
        "web": f"{WEB_WORKERS}x{WEB_THREADS}",
        "rq_workers": f"{RQ_WORKERS} {WORKER_KIND}",
        "worker_nice": WORKER_NICE,
        "ack_failures": failures,
        "acks_per_s": round(len(load.bodies) / wall, 1),
        "ack_p50_ms": round(percentile(latencies, 0.50), 2),
        "ack_p99_ms": round(percentile(latencies, 0.99), 2),
        "outbox_complete_s": None if outbox_s is None else round(outbox_s, 1),
        # CPU per request and per payment: what the figures above cost, whatever the load.
        "web_cpu_ms_per_ack": round(1000 * (posted["web"] - idle["web"]) / len(load.bodies), 2),
        "worker_cpu_ms_per_payment": round(
            1000 * (done["workers"] - idle["workers"]) / load.unique, 2
        ),
        "postgres_cpu_ms_per_payment": round(
            1000 * (done["postgres"] - idle["postgres"]) / load.unique, 2
        ),
        "load_avg_1min": [round(load_before, 2), round(load_during, 2)],
        "counts_ok": check["ok"],
        "counts": check["found"],
        "rules": check["rules"],
    }
    report(figures, check)
    if TRACE:
        slow = sorted(TRACE, key=lambda t: -t[1])[:40]
        print(" ".join(f"{t:.2f}s:{ms:.0f}" for t, ms in sorted(slow)))


def report(figures: dict[str, Any], check: dict[str, Any]) -> None:
    """The table, then the figures as one JSON line."""
    rows = [
        ("posted (10% duplicates, 5% typos)", figures["posted"]),
        ("concurrent clients", figures["clients"]),
        ("posting rate (/s)", figures["rate"]),
        ("gunicorn workers x threads", figures["web"]),
        ("rq workers", figures["rq_workers"]),
        ("acknowledgements/s", figures["acks_per_s"]),
        ("ack latency p50 (ms)", figures["ack_p50_ms"]),
        ("ack latency p99 (ms)", figures["ack_p99_ms"]),
        (
            "every token in the outbox after (s)",
            figures["outbox_complete_s"] or f"> {OUTBOX_DEADLINE:.0f}",
        ),
        ("web CPU per ack (ms)", figures["web_cpu_ms_per_ack"]),
        ("worker CPU per payment (ms)", figures["worker_cpu_ms_per_payment"]),
        ("postgres CPU per payment (ms)", figures["postgres_cpu_ms_per_payment"]),
        ("load average before, during", figures["load_avg_1min"]),
    ]
    for label, value in rows:
        print(f"{label:<36}{value!s:>14}")
    for key, value in check["found"].items():
        print(f"{key:<36}{value:>14}   (expected {check['expected'][key]})")
    print(f"{'match rules':<36}{json.dumps(check['rules'])}")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
