"""The `paygo` command line: text for people, one JSON object with --json, errors on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from paygo import accountnumbers, create_app
from paygo.crypto import hash_api_key
from paygo.demo import DEMO_PLAN
from paygo.gateway import Gateway
from paygo.models import (
    Account,
    ApiKey,
    AuditLog,
    Customer,
    Device,
    OutboundMessage,
    PaymentPlan,
)
from paygo.settings import VARIABLES
from tests.conftest import TEST_SETTINGS

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _count(session: Session, model: type[SQLModel]) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def _counts(gateway: Gateway) -> dict[str, int]:
    with gateway.db.session() as session:
        return {
            m.__name__: _count(session, m) for m in (PaymentPlan, Device, Customer, Account, ApiKey)
        }


def _ok(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def _json(runner: FlaskCliRunner, *args: str) -> dict[str, Any]:
    out = _ok(runner, *args, "--json")
    assert out.count("\n") == 1, "--json prints exactly one line"
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


# --- --json ------------------------------------------------------------------------------


def test_every_command_prints_one_json_object_with_json(
    runner: FlaskCliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    assert "upgraded_to" in _json(runner, "db", "upgrade")
    assert _json(runner, "demo")["loaded"] is True
    assert (
        _json(
            runner,
            "plans",
            "create",
            "--name",
            "Basic",
            "--currency",
            "KES",
            "--price-per-day",
            "50",
        )["price_per_day"]
        == 5000
    )
    assert len(_json(runner, "plans", "list")["plans"]) == 2
    fleet = str(shared_dir / "openpaygo" / "example_device_list.csv")
    assert _json(runner, "devices", "import", fleet)["created"] == 2
    assert _json(runner, "devices", "export", str(tmp_path / "out.csv"))["exported"] == 9
    assert len(_json(runner, "devices", "list")["devices"]) == 9
    number = _json(
        runner,
        "accounts",
        "create",
        "--name",
        "Otieno",
        "--phone",
        "0722000009",
        "--device",
        "SLT220000001",
        "--plan",
        "Basic",
    )["account_number"]
    assert _json(runner, "accounts", "show", str(number))["account_number"] == number
    assert _json(runner, "messages", "list")["messages"] == []
    assert _json(runner, "apikeys", "create", "--role", "viewer")["role"] == "viewer"
    assert _json(runner, "demo", "--if-empty") == {"loaded": False}


def test_errors_go_to_stderr_with_exit_status_1_even_with_json(runner: FlaskCliRunner) -> None:
    _ok(runner, "plans", "create", "--name", "Basic", "--currency", "KES", "--price-per-day", "50")
    result = runner.invoke(
        args=[
            "plans",
            "create",
            "--name",
            "Basic",
            "--currency",
            "KES",
            "--price-per-day",
            "60",
            "--json",
        ]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: a plan named 'Basic' exists already\n"


# --- plans -------------------------------------------------------------------------------


def test_plan_amounts_are_typed_in_major_units_and_stored_in_minor_units(
    runner: FlaskCliRunner, gateway: Gateway
) -> None:
    out = _ok(
        runner,
        "plans",
        "create",
        "--name",
        "Solar 80",
        "--currency",
        "kes",
        "--price-per-day",
        "50.50",
        "--deposit",
        "1,000",
        "--deposit-days",
        "7",
        "--min-payment",
        "20",
        "--total-price",
        "15000",
    )
    assert out == "plan Solar 80: KES 50.50 a day\n"
    with gateway.db.session() as session:
        plan = session.exec(select(PaymentPlan)).one()
    assert (
        plan.currency,
        plan.price_per_day,
        plan.deposit,
        plan.deposit_days,
        plan.min_payment,
        plan.total_price,
    ) == ("KES", 5050, 100000, 7, 2000, 1500000)
    assert _ok(runner, "plans", "list").splitlines() == [
        "ID  NAME      PER DAY    DEPOSIT    DEPOSIT DAYS  MINIMUM  TOTAL       RETIRED",
        " 1  Solar 80  KES 50.50  KES 1,000             7  KES 20   KES 15,000  -",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--currency", "XXX"], "unknown currency 'XXX'"),
        (["--price-per-day", "1e3"], "not an amount: '1e3'"),
        (["--price-per-day", "0"], "price per day must be positive"),
        (["--price-per-day", "50.5", "--currency", "UGX"], "more decimals than the currency"),
        (["--deposit", "-5"], "cannot be negative"),
        (["--total-price", "10", "--deposit", "20"], "total price cannot be below the deposit"),
        (["--total-price", "0"], "total price must be positive"),
        (["--price-per-day", "99999999999"], "too large"),
        (["--name", "x" * 81], "a plan needs a name of 1 to 80 characters"),
        (["--name", "  "], "a plan needs a name"),
    ],
)
def test_a_bad_plan_is_refused_with_a_reason_and_nothing_is_written(
    runner: FlaskCliRunner, gateway: Gateway, args: list[str], message: str
) -> None:
    options = {"--name": "Basic", "--currency": "KES", "--price-per-day": "50"}
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = runner.invoke(args=["plans", "create", *[x for kv in options.items() for x in kv]])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert _counts(gateway)["PaymentPlan"] == 0


# --- apikeys -----------------------------------------------------------------------------


def test_an_api_key_is_printed_once_and_only_its_hash_is_stored(
    runner: FlaskCliRunner, gateway: Gateway
) -> None:
    out = _ok(runner, "apikeys", "create", "--role", "operator", "--name", "till 4")
    raw = out.splitlines()[-1]
    assert raw.startswith("pg_") and len(raw) > 40
    with gateway.db.session() as session:
        key = session.exec(select(ApiKey)).one()
        audit = session.exec(select(AuditLog)).one()
        stored = [str(v) for v in key.model_dump().values()]
    assert key.key_hash == hash_api_key(raw)
    assert (key.role, key.name) == ("operator", "till 4")
    assert not any(raw in value for value in stored)
    assert (audit.action, audit.target_id) == ("apikey.create", str(key.id))
    assert raw not in audit.detail


def test_api_keys_differ_each_time(runner: FlaskCliRunner) -> None:
    keys = {str(_json(runner, "apikeys", "create", "--role", "admin")["key"]) for _ in range(3)}
    assert len(keys) == 3


def test_an_unknown_role_is_refused(runner: FlaskCliRunner, gateway: Gateway) -> None:
    result = runner.invoke(args=["apikeys", "create", "--role", "root"])
    assert result.exit_code == 2
    assert "'root' is not one of 'admin', 'operator', 'viewer'" in result.stderr
    assert _counts(gateway)["ApiKey"] == 0


# --- demo --------------------------------------------------------------------------------


def test_demo_loads_a_plan_devices_with_fresh_keys_customers_and_accounts(
    runner: FlaskCliRunner, gateway: Gateway
) -> None:
    out = _ok(runner, "demo")
    numbers = [line.strip() for line in out.splitlines()[1:]]
    assert len(numbers) == 4 and all(accountnumbers.is_valid(n) for n in numbers)
    assert _counts(gateway) == {
        "PaymentPlan": 1,
        "Device": 7,
        "Customer": 4,
        "Account": 4,
        "ApiKey": 0,
    }
    with gateway.db.session() as session:
        keys = {gateway.keys.open(d.secret_key_encrypted) for d in session.exec(select(Device))}
    assert len(keys) == 7


def test_demo_if_empty_is_idempotent(runner: FlaskCliRunner, gateway: Gateway) -> None:
    assert _ok(runner, "demo", "--if-empty").startswith("demo data loaded")
    after_first = _counts(gateway)
    assert _ok(runner, "demo", "--if-empty") == "demo data is there already\n"
    assert _counts(gateway) == after_first


def test_demo_twice_refuses_the_second_time_and_changes_nothing(
    runner: FlaskCliRunner, gateway: Gateway
) -> None:
    _ok(runner, "demo")
    after_first = _counts(gateway)
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 1
    assert again.stderr.startswith("error: the demo data is loaded already")
    assert f"{DEMO_PLAN!r}" in again.stderr
    assert _counts(gateway) == after_first


# --- messages ----------------------------------------------------------------------------


def test_messages_list_filters_by_phone_in_any_format(
    runner: FlaskCliRunner, gateway: Gateway
) -> None:
    with gateway.db.transaction() as session:
        session.add_all(
            [
                OutboundMessage(recipient="+254711000001", body="first"),
                OutboundMessage(recipient="+254722000002", body="other"),
                OutboundMessage(recipient="+254711000001", body="second"),
            ]
        )
    listed = _json(runner, "messages", "list", "--to", "0711000001")["messages"]
    assert [m["body"] for m in listed] == ["second", "first"]
    header, *rows = _ok(runner, "messages", "list").splitlines()
    assert header.split() == ["ID", "WRITTEN", "TO", "KIND", "STATUS", "TRIES", "REASON", "TEXT"]
    assert len(rows) == 3
    assert rows[0].split()[-5:] == ["reply", "queued", "0", "-", "second"]
    assert rows[0].index("+254711000001") == header.index("TO")


# --- database and startup errors ---------------------------------------------------------


def test_a_database_that_was_never_migrated_is_a_clear_error(tmp_path: Path) -> None:
    app = create_app(
        {
            **TEST_SETTINGS,
            "database_url": f"sqlite:///{tmp_path}/empty.sqlite3",
            "instance_path": str(tmp_path),
        }
    )
    result = app.test_cli_runner().invoke(args=["plans", "list"])
    assert result.exit_code == 1
    assert "no such table: payment_plans" in result.stderr
    assert "run `paygo db upgrade`" in result.stderr
    assert "Traceback" not in result.output
    app.extensions["paygo"].db.dispose()


def test_an_unreachable_database_is_a_clear_error_without_its_password(tmp_path: Path) -> None:
    app = create_app(
        {
            **TEST_SETTINGS,
            "instance_path": str(tmp_path),
            "database_url": "postgresql://paygo:hunter2secret@127.0.0.1:1/paygo",
        }
    )
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot migrate postgresql://paygo:***@127.0.0.1:1")
    assert "check DATABASE_URL" in result.stderr
    assert "hunter2secret" not in result.output
    app.extensions["paygo"].db.dispose()


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return {**env, "PAYGO_INSTANCE_PATH": str(tmp_path), **extra}


def test_paygo_in_production_with_a_default_secret_says_which_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "paygo"), "plans", "list"],
        capture_output=True,
        text=True,
        env=_environ(tmp_path, PAYGO_ENV="production"),
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: PAYGO_MASTER_KEY is missing or still the default")
    assert "SECRET_KEY is missing or still the default" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_flask_app_wsgi_runs_the_same_commands(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    env = _environ(
        tmp_path, DATABASE_URL=database_url, PAYGO_MASTER_KEY=str(TEST_SETTINGS["master_key"])
    )
    result = subprocess.run(
        [
            str(BIN / "flask"),
            "--app",
            "wsgi",
            "plans",
            "create",
            "--name",
            "Via Flask",
            "--currency",
            "TZS",
            "--price-per-day",
            "1000",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["price_per_day"] == 100000
    with app.extensions["paygo"].db.session() as session:
        assert session.exec(select(PaymentPlan.name)).all() == ["Via Flask"]
