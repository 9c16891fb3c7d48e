"""A fresh web worker whose first hop continues a session another process began."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import TEST_SETTINGS
from tests.conversation_data import KNOWN, account, gw
from tests.ussd_dialer import UssdDialer

ROOT = Path(__file__).resolve().parents[1]

#: Runs in a new interpreter: build the app and answer one hop, nothing else first.
FIRST_HOP = """
import json, sys
from paygo import create_app
config = json.loads(sys.argv[1])
app = create_app(config)
form = json.loads(sys.argv[2])
reply = app.test_client().post("/ussd/africastalking", data=form)
print(reply.get_data(as_text=True))
"""


@pytest.mark.parametrize("with_redis", [False, True], ids=["db-sessions", "redis-sessions"])
def test_first_hop_of_a_new_worker_shows_the_quote_not_the_apology(
    make_app: Callable[..., Flask],
    redis_url: str,
    redis_client: object,
    database_url: str,
    tmp_path: Path,
    with_redis: bool,
) -> None:
    overrides = {"redis_url": redis_url} if with_redis else {}
    app = make_app(**overrides)
    with gw(app).db.session() as session:
        account(session, gw(app))
    dialer = UssdDialer(app.test_client(), KNOWN)
    dialer.dial()
    assert "amount" in dialer.answer("3").lower()  # the session now waits for an amount

    config = {
        **TEST_SETTINGS,
        "database_url": database_url,
        "instance_path": str(tmp_path),
        **overrides,
    }
    form = {
        "sessionId": dialer.session_id,
        "serviceCode": "*384*4321#",
        "phoneNumber": KNOWN,
        "networkCode": "63902",
        "text": "3*500",
    }
    done = subprocess.run(
        [sys.executable, "-c", FIRST_HOP, json.dumps(config), json.dumps(form)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    screen = done.stdout.strip()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert screen.startswith("END KES 500 buys 10 days of light"), screen
