"""Customers and accounts: who pays for which box, under which plan, by which number."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlmodel import Session, select

from paygo import accountnumbers, accounts
from paygo.errors import Conflict, InvalidInput, NotFound
from paygo.gateway import Gateway
from paygo.models import Account, AccountStatus, Customer, Device, DeviceStatus
from tests.factories import make_account, make_device, make_plan


def _rows(session: Session, model: type[Account] | type[Customer]) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def test_an_account_takes_a_device_from_stock_under_a_check_digit_number(
    session: Session, gateway: Gateway
) -> None:
    plan, device = make_plan(session), make_device(session, gateway)
    account = accounts.create_account(
        session=session,
        name=" Wanjiku Mwangi ",
        phone="0711 000 001",
        serial=device.serial,
        plan=plan,
        language="sw",
    )
    assert accountnumbers.is_valid(account.number) and len(account.number) == 8
    assert account.status == AccountStatus.ACTIVE  # no deposit to wait for
    assert device.status == DeviceStatus.ASSIGNED
    customer = session.get(Customer, account.customer_id)
    assert customer is not None
    assert (customer.name, customer.phone, customer.language) == (
        "Wanjiku Mwangi",
        "+254711000001",
        "sw",
    )


def test_a_plan_with_a_deposit_opens_the_account_pending_its_deposit(
    session: Session, gateway: Gateway
) -> None:
    account = make_account(session, gateway, plan=make_plan(session, deposit=100000))
    assert account.status == AccountStatus.PENDING_DEPOSIT


def test_each_account_gets_its_own_valid_number(session: Session, gateway: Gateway) -> None:
    plan = make_plan(session)
    numbers = [make_account(session, gateway, plan=plan).number for _ in range(5)]
    assert len(set(numbers)) == 5
    assert all(accountnumbers.is_valid(n) for n in numbers)


def test_a_second_box_for_the_same_phone_reuses_the_customer(
    session: Session, gateway: Gateway
) -> None:
    first = make_account(session, gateway, phone="+254722000002")
    second = make_account(session, gateway, phone="0722000002", name="Someone Else")
    assert first.customer_id == second.customer_id
    assert [a.id for a in accounts.accounts_for_phone(session=session, phone="+254722000002")] == [
        first.id,
        second.id,
    ]


def test_a_device_already_assigned_cannot_be_taken_again(
    session: Session, gateway: Gateway
) -> None:
    account = make_account(session, gateway)
    device = session.get(Device, account.device_id)
    assert device is not None
    with pytest.raises(Conflict, match=f"device {device.serial} is assigned, not in stock"):
        make_account(session, gateway, device=device)


def test_a_repossessed_device_can_go_to_a_new_customer(session: Session, gateway: Gateway) -> None:
    account = make_account(session, gateway)
    device = session.get(Device, account.device_id)
    assert device is not None
    device.status = DeviceStatus.REPOSSESSED
    assert make_account(session, gateway, device=device).device_id == device.id


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"serial": "NOPE"}, NotFound, "no device with serial 'NOPE'"),
        ({"phone": "12345"}, InvalidInput, "not a valid phone number"),
        ({"language": "de"}, InvalidInput, "language must be one of en, sw, fr"),
        ({"name": "  "}, InvalidInput, "a new customer needs a name"),
    ],
)
def test_bad_account_input_is_refused_clearly(
    session: Session,
    gateway: Gateway,
    overrides: dict[str, str],
    error: type[Exception],
    message: str,
) -> None:
    values = {
        "name": "Amina",
        "phone": "+254733000003",
        "serial": make_device(session, gateway).serial,
        "language": "en",
        **overrides,
    }
    with pytest.raises(error, match=message):
        accounts.create_account(session=session, plan=make_plan(session), **values)
    assert _rows(session, Account) == 0


def test_get_account_finds_by_number_and_names_a_missing_one(
    session: Session, gateway: Gateway
) -> None:
    account = make_account(session, gateway)
    assert accounts.get_account(session=session, number=f" {account.number} ").id == account.id
    unknown = accountnumbers.from_sequence(9_000_000)
    with pytest.raises(NotFound, match=f"no account '{unknown}'"):
        accounts.get_account(session=session, number=unknown)


def test_an_account_number_is_found_typed_with_spaces_or_dashes(
    session: Session, gateway: Gateway
) -> None:
    number = make_account(session, gateway).number
    for typed in (f"{number[:4]} {number[4:]}", f"{number[:4]}-{number[4:]}", f" {number} "):
        assert accounts.get_account(session=session, number=typed).number == number


def test_a_wrong_check_digit_says_so_and_names_the_nearest_real_account(
    session: Session, gateway: Gateway
) -> None:
    number = make_account(session, gateway).number
    swapped = number[:-3] + number[-2] + number[-3] + number[-1]
    typo = number[:-2] + str((int(number[-2]) + 1) % 10) + number[-1]
    for mistyped in (swapped, typo):
        if mistyped == number or accountnumbers.is_valid(mistyped):
            continue
        with pytest.raises(NotFound) as caught:
            accounts.get_account(session=session, number=mistyped)
        assert caught.value.message == (
            f"no account {mistyped}: its check digit is wrong; did you mean {number}?"
        )
    nowhere = "12345678" if not accountnumbers.is_valid("12345678") else "12345679"
    with pytest.raises(NotFound, match="check digit is wrong$"):
        accounts.get_account(session=session, number=nowhere)


# --- the CLI -----------------------------------------------------------------------------


def _stock(gateway: Gateway, serial: str = "BOX1") -> None:
    with gateway.db.transaction() as session:
        make_plan(session, name="Basic")
        make_device(session, gateway, serial=serial)


def test_cli_create_prints_the_account_number_last(
    runner: FlaskCliRunner, gateway: Gateway
) -> None:
    _stock(gateway)
    result = runner.invoke(
        args=[
            "accounts",
            "create",
            "--name",
            "Otieno",
            "--phone",
            "0722000002",
            "--device",
            "BOX1",
            "--plan",
            "Basic",
            "--language",
            "sw",
        ]
    )
    assert result.exit_code == 0, result.output
    number = result.stdout.splitlines()[-1]
    assert accountnumbers.is_valid(number)
    with gateway.db.session() as session:
        account = accounts.get_account(session=session, number=number)
        customer = session.get(Customer, account.customer_id)
        assert customer is not None and customer.language == "sw"


def test_cli_create_with_json_prints_only_the_account_number(
    runner: FlaskCliRunner, gateway: Gateway
) -> None:
    _stock(gateway)
    result = runner.invoke(
        args=[
            "accounts",
            "create",
            "--name",
            "Otieno",
            "--phone",
            "+254722000002",
            "--device",
            "BOX1",
            "--plan",
            "Basic",
            "--json",
        ]
    )
    data = json.loads(result.stdout)
    assert list(data) == ["account_number"] and accountnumbers.is_valid(data["account_number"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plan", "Gold"], "error: no plan with the id or name 'Gold'"),
        (["--device", "NOPE"], "error: no device with serial 'NOPE'"),
        (["--phone", "not-a-phone"], "error: not a valid phone number"),
    ],
)
def test_cli_create_with_bad_input_fails_on_stderr_and_writes_nothing(
    runner: FlaskCliRunner, gateway: Gateway, args: list[str], message: str
) -> None:
    _stock(gateway)
    base = {"--name": "Otieno", "--phone": "+254722000002", "--device": "BOX1", "--plan": "Basic"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = runner.invoke(args=["accounts", "create", *[x for pair in base.items() for x in pair]])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    with gateway.db.session() as session:
        assert _rows(session, Account) == 0 and _rows(session, Customer) == 0
        assert _in_stock(session) == 1


def _in_stock(session: Session) -> int:
    query = select(func.count()).select_from(Device).where(Device.status == DeviceStatus.IN_STOCK)
    return int(session.exec(query).one())


def test_cli_show_prints_the_credit_state_in_text_and_json(
    runner: FlaskCliRunner, gateway: Gateway
) -> None:
    _stock(gateway)
    number = runner.invoke(
        args=[
            "accounts",
            "create",
            "--name",
            "Otieno",
            "--phone",
            "+254722000002",
            "--device",
            "BOX1",
            "--plan",
            "Basic",
        ]
    ).stdout.splitlines()[-1]
    text = runner.invoke(args=["accounts", "show", number])
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith(f"account {number} (active), device BOX1, plan Basic")
    data = json.loads(runner.invoke(args=["accounts", "show", number, "--json"]).stdout)
    assert (data["account_number"], data["device"], data["plan"], data["total_paid"]) == (
        number,
        "BOX1",
        "Basic",
        0,
    )


def test_cli_show_of_an_unknown_account_says_so_on_stderr(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["accounts", "show", "10000004", "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: no account '10000004'\n"
