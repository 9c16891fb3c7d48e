"""Finding anything from the terminal: accounts, customers, payments, tickets, plans, the
audit log and lockouts, each list in pages with --json, --limit and --cursor, through
Click's runner on the demo data."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import pytest
import redis
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session, col, select

from paygo import accountnumbers
from paygo.cli import COMMANDS, load_command
from paygo.gateway import Gateway
from paygo.models import Account, AuditLog, Customer, Ticket, utcnow
from tests.conftest import PaygoRunner
from tests.payment_helpers import MpesaPaybill
from tests.ussd_dialer import UssdDialer

WANJIKU, OTIENO = "+254711000001", "+254722000002"


def ok(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def data(runner: FlaskCliRunner, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(ok(runner, *args, "--json"))
    return found


def refused(runner: FlaskCliRunner, *args: str) -> Result:
    result = runner.invoke(args=list(args))
    assert result.exit_code != 0 and result.stdout == ""
    return result


@pytest.fixture
def demo(runner: FlaskCliRunner) -> list[str]:
    """The demo's accounts: Wanjiku (en), Otieno (sw), Amina (sw), Jean (fr)."""
    numbers: list[str] = data(runner, "demo")["accounts"]
    return numbers


def numbers(rows: list[dict[str, Any]]) -> list[str]:
    return [row["account_number"] for row in rows]


# --- every list --------------------------------------------------------------------------

LISTS = [
    ["accounts", "list"],
    ["accounts", "search", "x"],
    ["payments", "list"],
    ["payments", "unmatched"],
    ["tickets", "list"],
    ["plans", "list"],
    ["audit", "list"],
    ["lockouts", "list"],
    ["messages", "list"],
    ["messages", "failed"],
    ["devices", "list"],
    ["tokens", "list", "ACCOUNT"],
]


def test_every_list_takes_json_limit_and_cursor() -> None:
    for args in LISTS:
        group = load_command(args[0])
        assert isinstance(group, click.Group)
        command = group.commands[args[1]]
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        assert {"--json", "--limit", "--cursor"} <= options, args
    assert {args[0] for args in LISTS} <= set(COMMANDS)


def test_a_list_pages_with_its_cursor_and_refuses_another_lists(
    runner: FlaskCliRunner, demo: list[str]
) -> None:
    first = data(runner, "accounts", "list", "--limit", "3")
    assert numbers(first["accounts"]) == demo[::-1][:3]
    rest = data(runner, "accounts", "list", "--limit", "3", "--cursor", first["next"])
    assert numbers(rest["accounts"]) == demo[:1] and rest["next"] is None
    text = ok(runner, "accounts", "list", "--limit", "3")
    assert text.splitlines()[-1] == f"more: add --cursor {first['next']}"
    assert (
        "not a cursor of the payments list"
        in refused(runner, "payments", "list", "--cursor", first["next"]).stderr
    )
    assert "not a cursor" in refused(runner, "accounts", "list", "--cursor", "garbage!").stderr
    assert "1<=x<=500" in refused(runner, "accounts", "list", "--limit", "501").stderr


def test_a_human_table_has_aligned_columns(runner: FlaskCliRunner, demo: list[str]) -> None:
    header, *rows = ok(runner, "accounts", "list").splitlines()
    for column in ("STATUS", "CUSTOMER", "PHONE", "PLAN", "DEVICE"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " for row in rows), column
    assert header.startswith("ACCOUNT") and len(rows) == 4


# --- accounts ----------------------------------------------------------------------------


def test_accounts_list_filters_by_status_plan_and_lateness(
    runner: FlaskCliRunner, gateway: Gateway, demo: list[str]
) -> None:
    ok(runner, "payments", "record", demo[0], "1000")  # the deposit: active, 7 days
    with gateway.db.transaction() as session:
        late = session.exec(select(Account).where(Account.number == demo[1])).one()
        late.status, late.credit_until = "active", utcnow() - timedelta(days=10)
    active = data(runner, "accounts", "list", "--status", "active")["accounts"]
    assert sorted(numbers(active)) == sorted(demo[:2])
    assert numbers(data(runner, "accounts", "list", "--late-days", "5")["accounts"]) == [demo[1]]
    assert data(runner, "accounts", "list", "--late-days", "11")["accounts"] == []
    by_name = data(runner, "accounts", "list", "--plan", "solar home 80w")["accounts"]
    plan_id = data(runner, "plans", "list")["plans"][0]["id"]
    by_id = data(runner, "accounts", "list", "--plan", str(plan_id))["accounts"]
    assert len(by_name) == len(by_id) == 4
    assert (
        "no plan with the id or name 'Gold'"
        in refused(runner, "accounts", "list", "--plan", "Gold").stderr
    )


@pytest.mark.parametrize(
    "typed",
    ["wanjiku", "MWANGI", "0711000001", "+254711000001", "254711000001", "0711 000 001"],
)
def test_accounts_search_finds_by_name_or_phone_in_any_local_form(
    runner: FlaskCliRunner, demo: list[str], typed: str
) -> None:
    found = data(runner, "accounts", "search", typed)["accounts"]
    assert numbers(found) == [demo[0]]
    assert found[0]["customer"] == "Wanjiku Mwangi" and found[0]["phone"] == WANJIKU


def test_accounts_search_finds_by_number_with_spaces_or_dashes_and_by_serial(
    runner: FlaskCliRunner, demo: list[str]
) -> None:
    number = demo[2]
    for typed in (number, f"{number[:4]} {number[4:]}", f"{number[:4]}-{number[4:]}"):
        assert numbers(data(runner, "accounts", "search", typed)["accounts"]) == [number]
    serial = data(runner, "accounts", "show", number)["device"]
    assert numbers(data(runner, "accounts", "search", serial.lower())["accounts"]) == [number]
    assert ok(runner, "accounts", "search", "nobody-like-this") == (
        "no account matches 'nobody-like-this'\n"
    )
    assert data(runner, "accounts", "search", "100%")["accounts"] == []  # % is no wildcard


def test_accounts_show_names_the_customer_and_the_latest_of_everything(
    runner: FlaskCliRunner, client: FlaskClient, shared_dir: Path, demo: list[str]
) -> None:
    number = demo[0]
    ok(runner, "payments", "record", number, "1000")
    MpesaPaybill(client, shared_dir).pay(number, "150")
    dialer = UssdDialer(client, WANJIKU)
    dialer.dial()
    dialer.answer("5", "no light at night")
    shown = data(runner, "accounts", "show", f"{number[:4]} {number[4:]}")
    assert shown["customer"]["name"] == "Wanjiku Mwangi"
    assert (shown["customer"]["phone"], shown["customer"]["language"]) == (WANJIKU, "en")
    assert [p["amount"] for p in shown["payments"]] == [15000, 100000]
    assert len(shown["tokens"]) == 2 and len(shown["messages"]) == 2
    assert [t["body"] for t in shown["tickets"]] == ["no light at night"]
    text = ok(runner, "accounts", "show", number)
    assert "customer: Wanjiku Mwangi, +254711000001, language en" in text
    for section in ("last payments:", "last codes:", "last messages:", "last tickets:"):
        assert section in text
    assert "EAT" in text and "no light at night" in text


# --- customers ---------------------------------------------------------------------------


def test_customers_show_by_phone_or_account(runner: FlaskCliRunner, demo: list[str]) -> None:
    by_phone = data(runner, "customers", "show", "0711000001")
    by_account = data(runner, "customers", "show", demo[0])
    assert by_phone == by_account
    assert by_phone["name"] == "Wanjiku Mwangi"
    assert numbers(by_phone["accounts"]) == [demo[0]]
    assert "phone_digest" not in by_phone
    assert (
        "no customer with the phone or account"
        in refused(runner, "customers", "show", "0799999999").stderr
    )


def test_customers_update_corrects_and_audits_who_what_and_why(
    runner: FlaskCliRunner, gateway: Gateway, demo: list[str]
) -> None:
    done = data(
        runner,
        "customers",
        "update",
        demo[0],
        "--name",
        " Wanjiku  Kamau ",
        "--phone",
        "0799 123 456",
        "--language",
        "sw",
        "--reason",
        "married, new line",
        "--actor",
        "agent-5",
    )
    assert done["changed"] == {
        "name": {"from": "Wanjiku Mwangi", "to": "Wanjiku Kamau"},
        "phone": {"from": WANJIKU, "to": "+254799123456"},
        "language": {"from": "en", "to": "sw"},
    }
    with gateway.db.session() as session:
        customer = session.exec(select(Customer).where(Customer.name == "Wanjiku Kamau")).one()
        entry = session.exec(select(AuditLog).where(AuditLog.action == "customer.update")).one()
    assert customer.phone == "+254799123456" and customer.language == "sw"
    assert (entry.actor, entry.target_id) == ("agent-5", str(customer.id))
    assert json.loads(entry.detail)["reason"] == "married, new line"
    # Nothing changes when the new phone is someone else's, or nothing would change.
    taken = refused(runner, "customers", "update", demo[0], "--phone", OTIENO, "--reason", "x")
    assert f"{OTIENO} is already the phone of customer" in taken.stderr
    same = refused(
        runner, "customers", "update", demo[0], "--name", "Wanjiku Kamau", "--reason", "x"
    )
    assert "nothing to change" in same.stderr
    missing = refused(runner, "customers", "update", demo[0], "--name", "X")
    assert "Missing option '--reason'" in missing.stderr


# --- payments ----------------------------------------------------------------------------


def test_payments_list_shows_every_payment_with_its_id_and_reason(
    runner: FlaskCliRunner, client: FlaskClient, shared_dir: Path, demo: list[str]
) -> None:
    paybill = MpesaPaybill(client, shared_dir)
    paybill.pay(demo[0], "1000")
    paybill.pay("NOBODY", "150", phone="254799999999")
    paybill.pay(demo[1], "abc")
    ok(runner, "payments", "record", demo[2], "1000")
    listed = data(runner, "payments", "list")["payments"]
    assert [p["status"] for p in listed] == ["credited", "rejected", "unmatched", "credited"]
    assert all(p["id"] for p in listed) and "raw" not in listed[0]
    rejected = data(runner, "payments", "list", "--status", "rejected")["payments"]
    assert len(rejected) == 1 and rejected[0]["status_reason"]
    unmatched = data(runner, "payments", "list", "--status", "unmatched")["payments"]
    assert "no account" in unmatched[0]["status_reason"]
    mine = data(runner, "payments", "list", "--account", demo[0])["payments"]
    assert [p["amount"] for p in mine] == [100000]
    cash = data(runner, "payments", "list", "--provider", "MANUAL")["payments"]
    assert [p["account_id"] for p in cash] == [listed[0]["account_id"]]
    tomorrow = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%d")
    assert data(runner, "payments", "list", "--since", tomorrow)["payments"] == []
    text = ok(runner, "payments", "list", "--status", "unmatched")
    assert "NOBODY" in text and "no account" in text and "KES 150" in text


# --- tickets -----------------------------------------------------------------------------


def test_a_ticket_opened_by_ussd_is_listed_at_once_and_goes_to_closed(
    runner: FlaskCliRunner, client: FlaskClient, gateway: Gateway, demo: list[str]
) -> None:
    dialer = UssdDialer(client, WANJIKU)
    dialer.dial()
    dialer.answer("5", "battery does not charge")
    [ticket] = data(runner, "tickets", "list")["tickets"]
    assert (ticket["status"], ticket["channel"], ticket["account_number"]) == (
        "new",
        "ussd",
        demo[0],
    )
    tid = str(ticket["id"])
    assigned = data(runner, "tickets", "assign", tid, "tech Juma", "--note", "near Thika")
    assert (assigned["status"], assigned["assigned_to"]) == ("assigned", "tech Juma")
    ok(runner, "tickets", "comment", tid, "panel", "cable", "loose", "--actor", "juma")
    closed = data(runner, "tickets", "close", tid, "--reason", "cable fixed")
    assert closed["status"] == "closed" and closed["closed_at"]
    shown = data(runner, "tickets", "show", tid)
    assert [(c["author"], c["body"]) for c in shown["comments"]] == [
        ("cli", "near Thika"),
        ("juma", "panel cable loose"),
        ("cli", "cable fixed"),
    ]
    assert data(runner, "tickets", "list")["tickets"] == []
    assert len(data(runner, "tickets", "list", "--all")["tickets"]) == 1
    assert "cannot move to assigned" in refused(runner, "tickets", "assign", tid, "x").stderr
    assert "is closed" in refused(runner, "tickets", "comment", tid, "more").stderr
    with gateway.db.session() as session:
        actions = session.exec(
            select(AuditLog.action)
            .where(AuditLog.target_type == "ticket")
            .order_by(col(AuditLog.id))
        ).all()
    assert actions == ["ticket.assigned", "ticket.closed"]
    text = ok(runner, "tickets", "show", tid)
    assert "battery does not charge" in text and "juma: panel cable loose" in text
    assert "no ticket #999" in refused(runner, "tickets", "show", "999").stderr


# --- plans -------------------------------------------------------------------------------


def test_plans_list_shows_deposit_total_and_minimum(
    runner: FlaskCliRunner, demo: list[str]
) -> None:
    header, row = ok(runner, "plans", "list").splitlines()
    assert header.split()[:4] == ["ID", "NAME", "PER", "DAY"]
    for shown in ("KES 50", "KES 1,000", "KES 15,000"):
        assert shown in row
    [plan] = data(runner, "plans", "list")["plans"]
    assert (plan["deposit"], plan["min_payment"], plan["total_price"]) == (100000, 5000, 1500000)


def test_a_plan_is_updated_with_a_reason_and_a_retired_one_takes_no_new_account(
    runner: FlaskCliRunner, gateway: Gateway, demo: list[str]
) -> None:
    changed = data(
        runner, "plans", "update", "SOLAR HOME 80W", "--min-payment", "100", "--reason", "promo"
    )
    assert changed["changed"] == {"min_payment": {"from": 5000, "to": 10000}}
    retired = data(runner, "plans", "retire", "1", "--reason", "replaced by 100W")
    assert retired["retired_at"]
    assert data(runner, "plans", "list", "--active")["plans"] == []
    with gateway.db.session() as session:
        stock = session.exec(
            select(Account.device_id).where(Account.number == demo[0])
        ).one()  # any device; in stock or not, the plan is refused first
        assert stock
    refusal = refused(
        runner,
        "accounts",
        "create",
        "--name",
        "New Person",
        "--phone",
        "0733999999",
        "--device",
        "NONE",
        "--plan",
        "solar home 80w",
    )
    assert "plan 'Solar Home 80W' is retired" in refusal.stderr
    assert "was retired already" in refused(runner, "plans", "retire", "1", "--reason", "x").stderr
    with gateway.db.session() as session:
        actions = session.exec(select(AuditLog.action).where(AuditLog.target_type == "plan")).all()
    assert sorted(actions) == ["plan.retire", "plan.update"]


def test_a_plan_update_is_checked_like_a_new_plan(runner: FlaskCliRunner, demo: list[str]) -> None:
    bad = refused(runner, "plans", "update", "1", "--total-price", "500", "--reason", "x")
    assert "total price cannot be below the deposit" in bad.stderr
    assert data(runner, "plans", "list")["plans"][0]["total_price"] == 1500000
    ok(runner, "plans", "create", "--name", "Basic", "--currency", "KES", "--price-per-day", "20")
    clash = refused(runner, "plans", "update", "basic", "--name", "solar home 80W", "--reason", "x")
    assert "a plan named 'solar home 80W' exists already" in clash.stderr


# --- audit and lockouts ------------------------------------------------------------------


def test_audit_list_filters_by_actor_target_and_time(
    runner: FlaskCliRunner, demo: list[str]
) -> None:
    ok(runner, "payments", "record", demo[0], "1000", "--actor", "cashier-2")
    ok(runner, "customers", "update", demo[1], "--language", "en", "--reason", "asked")
    mine = data(runner, "audit", "list", "--actor", "cashier-2")["entries"]
    assert {e["action"] for e in mine} == {"payment.credited", "payment.record"}
    assert {e["detail"]["amount"] for e in mine} == {100000}
    customer = data(runner, "customers", "show", demo[1])["id"]
    by_target = data(runner, "audit", "list", "--target", f"customer:{customer}")["entries"]
    assert [e["action"] for e in by_target] == ["customer.update"]
    tomorrow = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%d")
    assert data(runner, "audit", "list", "--since", tomorrow)["entries"] == []
    assert "payment.credited" in ok(runner, "audit", "list")


def _lock(client: FlaskClient, phone: str) -> None:
    """Type wrong account numbers from an unknown phone until it is locked out."""
    for attempt in range(3):
        dialer = UssdDialer(client, phone)
        dialer.dial()
        dialer.answer(accountnumbers.from_sequence(9_000 + attempt))  # valid, but no one's


@pytest.mark.parametrize("with_redis", [False, True])
def test_lockouts_list_and_clear(
    make_app: Any, redis_url: str, redis_client: redis.Redis, with_redis: bool, demo: list[str]
) -> None:
    app: Flask = make_app(**({"redis_url": redis_url} if with_redis else {}))
    runner = PaygoRunner(app)
    stranger = "+254700111222"
    _lock(app.test_client(), stranger)
    [locked] = data(runner, "lockouts", "list")["lockouts"]
    assert (locked["phone"], locked["failures"]) == (stranger, 3)
    assert stranger in ok(runner, "lockouts", "list")
    cleared = data(runner, "lockouts", "clear", "0700 111 222", "--reason", "owner verified")
    assert cleared["forgotten"] == 3
    assert data(runner, "lockouts", "list")["lockouts"] == []
    again = refused(runner, "lockouts", "clear", stranger, "--reason", "again")
    assert "has typed no wrong account number lately" in again.stderr
    gateway: Gateway = app.extensions["paygo"]
    assert gateway.backplane.scored(f"lookup-fail:{stranger}", above=0, now=utcnow()) == []
    with gateway.db.session() as session:
        entry = session.exec(select(AuditLog).where(AuditLog.action == "lockout.clear")).one()
    assert entry.target_id == stranger


def test_a_ticket_row_keeps_its_phone_when_it_has_no_account(
    runner: FlaskCliRunner, session: Session, gateway: Gateway
) -> None:
    with gateway.db.transaction() as s:
        s.add(Ticket(phone="+254700000009", channel="sms", body="who do I call?"))
    [row] = data(runner, "tickets", "list")["tickets"]
    assert (row["phone"], row["account_number"], row["customer"]) == ("+254700000009", None, None)
