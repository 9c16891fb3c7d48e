"""Tokens per second: our codec (app.tokens.codec) against the reference openpaygo library.

Run from the repo root: ``.venv/bin/python bench/tokens.py``. Prints a table, then as the last
line one JSON object with the figures. Exits 1 if any of our tokens differs from the reference.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openpaygo  # noqa: E402
from openpaygo import TokenType  # noqa: E402

from paygo.tokens.codec import DeviceCodeParams, TokenKind, generate  # noqa: E402

COUNTS = (10, 1_000, 2_000, 5_000)
MODES = {  # name: (restricted, extended)
    "standard": (False, False),
    "restricted": (True, False),
    "extended": (False, True),
}
REFERENCE_TYPE = {
    TokenKind.ADD_TIME: TokenType.ADD_TIME,
    TokenKind.SET_TIME: TokenType.SET_TIME,
    TokenKind.DISABLE_PAYG: TokenType.DISABLE_PAYG,
    TokenKind.COUNTER_SYNC: TokenType.COUNTER_SYNC,
}
KINDS = tuple(TokenKind)
SECONDS_PER_CELL = 0.3  # per round, per side
ROUNDS = 3  # best of: the machine may be busy

Job = tuple[DeviceCodeParams, TokenKind, int, int]
Tok = tuple[int, str]


def make_jobs(restricted: bool, extended: bool, count: int, n: int) -> list[Job]:
    """n token requests at ``count`` with varied keys, starting codes, kinds and values."""
    jobs: list[Job] = []
    for i in range(n):
        key = os.urandom(16)
        params = DeviceCodeParams(
            key=key,
            starting_code=int.from_bytes(os.urandom(4), "big") % 1_000_000_000,
            restricted=restricted,
            extended=extended,
        )
        kind = KINDS[i % len(KINDS)]
        value = (i * 37) % 996 if kind in (TokenKind.ADD_TIME, TokenKind.SET_TIME) else 0
        jobs.append((params, kind, value, count + i % 2))
    return jobs


def ours(job: Job) -> tuple[int, str]:
    params, kind, value, count = job
    return generate(params, kind=kind, value_raw=value, current_count=count)


def reference(job: Job) -> tuple[int, str]:
    params, kind, value, count = job
    timed = kind in (TokenKind.ADD_TIME, TokenKind.SET_TIME)
    result: tuple[int, str] = openpaygo.generate_token(
        secret_key=params.key.hex(),
        count=count,
        value=value if timed else None,
        token_type=REFERENCE_TYPE[kind],
        starting_code=params.starting_code,
        restricted_digit_set=params.restricted,
        extended_token=params.extended,
    )
    return result


def rate(fn: Callable[[Job], Tok], jobs: list[Job]) -> tuple[float, list[Tok]]:
    """Tokens per second over ``jobs``, and the tokens."""
    start = time.perf_counter()
    out = [fn(job) for job in jobs]
    return len(jobs) / (time.perf_counter() - start), out


def compare(ref_jobs: list[Job], our_jobs: list[Job]) -> tuple[float, float, int]:
    """Best-of-ROUNDS rates (ours, reference), alternating so load hits both; mismatches."""
    ours_best = ref_best = 0.0
    bad = 0
    for _ in range(ROUNDS):
        ref_rate, ref_out = rate(reference, ref_jobs)
        our_rate, _ = rate(ours, our_jobs)
        _, check_out = rate(ours, ref_jobs)
        bad = max(bad, sum(a != b for a, b in zip(check_out, ref_out, strict=True)))
        ours_best, ref_best = max(ours_best, our_rate), max(ref_best, ref_rate)
    return ours_best, ref_best, bad


def jobs_for(seconds_per_token: float) -> int:
    return max(3, min(20_000, int(SECONDS_PER_CELL / max(seconds_per_token, 1e-7))))


def main() -> int:
    results: list[dict[str, object]] = []
    mismatches = 0
    at_2000: list[float] = []
    print(f"{'mode':<11} {'count':>6} {'ours tok/s':>12} {'ref tok/s':>11} {'ratio':>8}  check")
    for mode, (restricted, extended) in MODES.items():
        for count in COUNTS:
            # Size each run from a rough cost model: ~15 us (reference) and ~0.3 us (ours) a step.
            ref_jobs = make_jobs(restricted, extended, count, jobs_for(15e-6 * (count + 20)))
            our_jobs = make_jobs(restricted, extended, count, jobs_for(0.3e-6 * (count + 20)))
            our_rate, ref_rate, bad = compare(ref_jobs, our_jobs)
            mismatches += bad
            ratio = our_rate / ref_rate
            if count == 2_000:
                at_2000.append(round(ratio, 1))
            check = "ok" if not bad else f"{bad} DIFFER"
            print(
                f"{mode:<11} {count:>6,} {our_rate:>12,.0f} {ref_rate:>11,.1f} {ratio:>7.1f}x  "
                f"{check} ({len(ref_jobs)} compared)"
            )
            results.append(
                {
                    "mode": mode,
                    "count": count,
                    "ours_tokens_per_s": round(our_rate, 1),
                    "reference_tokens_per_s": round(ref_rate, 2),
                    "speedup": round(ratio, 1),
                    "compared": len(ref_jobs),
                    "mismatches": bad,
                }
            )
    summary = {
        "results": results,
        "min_speedup_at_2000": min(at_2000) if at_2000 else None,
        "mismatches": mismatches,
        "python": sys.version.split()[0],
    }
    if mismatches:
        print(f"FAILED: {mismatches} tokens differ from the reference", file=sys.stderr)
    print(json.dumps(summary, separators=(",", ":")))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
