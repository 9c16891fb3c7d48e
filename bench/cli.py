"""Start-up of the `paygo` command line, against `python -c pass` in the same run.

Run from the repo root: ``.venv/bin/python bench/cli.py``. Loads the demo data into a
temporary SQLite instance, then times each command end to end as a process (wall clock,
best and median of ROUNDS runs, interleaved so a busy moment hits every command alike).
Prints a table, then as the last line one JSON object with the figures. Aims: `--help`
under 0.3 s and `accounts show` under 0.6 s; `python -X importtime` tells where time goes.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
AIMS = {"paygo --help": 0.3, "paygo accounts show": 0.6}


def environment(instance: Path) -> dict[str, str]:
    """The caller's environment without our settings, on a private instance folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYGO_", "DATABASE_"))}
    return {**env, "PAYGO_INSTANCE_PATH": str(instance), "REDIS_URL": ""}


def run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one process took, from start to exit; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return took


def commands(account: str) -> dict[str, list[str]]:
    paygo = str(BIN / "paygo")
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "paygo --help": [paygo, "--help"],
        "paygo --version": [paygo, "--version"],
        "paygo accounts show": [paygo, "accounts", "show", account],
        "paygo plans list": [paygo, "plans", "list"],
    }


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="paygo-bench-cli-"))
    try:
        env = environment(folder / "instance")
        paygo = str(BIN / "paygo")
        run([paygo, "db", "upgrade"], env, folder)
        loaded = subprocess.run(
            [paygo, "demo", "--json"], env=env, cwd=folder, capture_output=True, check=True
        )
        account = json.loads(loaded.stdout)["accounts"][0]
        timed = commands(account)
        for args in timed.values():  # warm the disk cache and the bytecode
            run(args, env, folder)
        seconds: dict[str, list[float]] = {name: [] for name in timed}
        for _ in range(ROUNDS):
            for name, args in timed.items():
                seconds[name].append(run(args, env, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(seconds)


def report(seconds: dict[str, list[float]]) -> None:
    baseline = min(seconds["python -c pass"])
    print(f"{'command':<22} {'best s':>7} {'median s':>9} {'over python':>12} {'aim s':>6}")
    figures: dict[str, object] = {"rounds": ROUNDS, "load_average": os.getloadavg()[0]}
    for name, runs in seconds.items():
        best, median = min(runs), statistics.median(runs)
        aim = AIMS.get(name)
        print(
            f"{name:<22} {best:>7.3f} {median:>9.3f} {best - baseline:>12.3f} "
            f"{'' if aim is None else f'{aim:.1f}':>6}"
        )
        key = name.removeprefix("paygo ").replace(" ", "_").replace("-", "")
        figures[f"{key}_best_s"] = round(best, 3)
        figures[f"{key}_median_s"] = round(median, 3)
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
