"""The texts catalogue (flows/texts.yaml) and the one way values are written for customers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from flask import Flask
from sqlmodel import Session, select

from paygo.cli.flows import flows_group
from paygo.conversations.service import SHIPPED_FLOWS
from paygo.credit import Quote
from paygo.errors import FlowError
from paygo.gateway import Gateway
from paygo.models import OutboundMessage, Token
from paygo.texts import formats, receipts, reminders, sms
from paygo.texts.catalogue import MESSAGES, SHIPPED, read_texts, shipped
from paygo.texts.check import check_texts, load_texts
from paygo.tokens.codec import TokenKind
from tests.conversation_data import KNOWN, NOW, account, set_clock
from tests.payment_helpers import MpesaPaybill
from tests.ussd_dialer import UssdDialer

CONSTANTS = {"distributor": "SunPower", "paybill": "600638"}


# Writing values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (3.0, "3"),
        (12.5, "12.5"),
        (1.75, "1.75"),
        (29 / 100, "0.29"),  # 0.28999... as a float: still the 29 hundredths bought
        (1 / 3, "0.33"),
        (2 / 3, "0.66"),  # never rounded up
        (2.999, "2.99"),
        (0.0, "0"),
        (2985.0, "2985"),
        (99999.999, "99999.99"),
    ],
)
def test_days_are_written_in_hundredths_rounded_down(value: float, written: str) -> None:
    assert formats.days(value) == written


def test_time_left_a_microsecond_short_of_a_hundredth_shows_one_hundredth_less() -> None:
    day = timedelta(days=1)
    assert formats.days((day * 0.3) / day) == "0.3"
    assert formats.days((day * 0.3 - timedelta(microseconds=1)) / day) == "0.29"
    assert formats.days((day * 995 - timedelta(microseconds=1)) / day) == "994.99"


def test_dates_codes_and_money_are_written_one_way() -> None:
    moment = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # already 1 December in Nairobi
    assert formats.date(moment, "Africa/Nairobi") == "01/12/2026"
    assert formats.date(None, "Africa/Nairobi") == "-"
    assert formats.day_month(date(2026, 12, 1), shipped().months["sw"]) == "1 Des"
    assert formats.code("123456789012") == "123 456 789 012"
    assert formats.money(150050, "KES") == "KES 1,500.50"
    assert len(formats.money(99_999_999_999, "KES")) == formats.MONEY


def test_ussd_and_the_receipt_write_the_same_days_the_same_way(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    account(session, gateway, days=2.999)  # 2 days 23 h 58 min
    dialer = UssdDialer(app.test_client(), KNOWN)
    dialer.dial()
    assert "\nDays left: 2.99\n" in dialer.answer("1")
    quote = Quote(
        amount=14995,
        currency="KES",
        counted=14995,
        overpayment=0,
        deposit_part=0,
        deposit_left=0,
        activates=False,
        below_minimum=False,
        steps=2999,
        days=2.999,
        remainder_after=0,
        pays_off=False,
        credit_until=NOW,
        minimum=0,
    )
    token = Token(device_id=1, count=1, type=TokenKind.ADD_TIME, code="123456789")
    receipt = receipts.render_receipt(
        language="en",
        account_number="1",
        quote=quote,
        tokens=[token],
        timezone="UTC",
        texts=shipped(),
    )
    assert "(2.99 days, light until 20/11/2026)" in receipt


# The catalogue --------------------------------------------------------------------------------


def test_the_shipped_catalogue_has_every_message_in_every_customer_language() -> None:
    texts, problems = check_texts(SHIPPED, CONSTANTS)
    assert problems == [] and texts is not None
    assert set(texts.messages) == set(MESSAGES)
    assert all(set(by_lang) == {"en", "sw", "fr"} for by_lang in texts.messages.values())


def _write(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "texts.yaml"
    path.write_text(
        yaml.safe_dump(raw, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8"
    )
    return path


def _line(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, text in enumerate(lines, 1) if needle in text)


@pytest.mark.parametrize(
    ("change", "needle", "expected"),
    [
        (
            lambda t: t["receipt"]["deposit"].pop("sw"),
            None,
            ", language sw: missing receipt.deposit",
        ),
        (
            lambda t: t["reminder"].update(
                expiry={**t["reminder"]["expiry"], "fr": "Payez {dette}"}
            ),
            "Payez {dette}",
            "texts.yaml:{line}, language fr: reminder.expiry uses unknown placeholder {dette}",
        ),
        (
            lambda t: t["token_notice"]["one"].update(en="Your code ê {codes}"),
            "Your code",
            "texts.yaml:{line}, language en: token_notice.one has characters outside the GSM-7 "
            "alphabet (ê)",
        ),
        (
            lambda t: t["receipt"].update(tip={"en": "x", "sw": "x", "fr": "x"}),
            "tip:",
            "texts.yaml:{line}: unknown receipt message 'tip'",
        ),
        (
            lambda t: t.update(footer="x"),
            "footer:",
            "texts.yaml:{line}: unknown top-level key 'footer'",
        ),
        (
            lambda t: t["receipt"]["time"].update(de="Danke"),
            None,
            "texts.yaml, language de: receipt.time is in a language the catalogue does not",
        ),
        (
            lambda t: t.update(languages=["en", "sw"]),
            "languages:",
            "texts.yaml:{line}: languages must include every language a customer can choose "
            "(missing fr)",
        ),
        (
            lambda t: t["months"].update(fr=t["months"]["fr"][:11]),
            "  fr:",
            "texts.yaml:{line}, language fr: months must be 12 short GSM-7 names",
        ),
        (
            lambda t: t["receipt"]["short"].update(en="Thank you! " + "x" * 100 + " {amount}"),
            "Thank you! xxx",
            "texts.yaml:{line}, language en: receipt.short can be 129 characters",
        ),
        (
            lambda t: t["receipt"]["time"].update(en="Acc {account}: " + "x" * 70 + " {tokens}"),
            "Acc {account}: xxx",
            "texts.yaml:{line}, language en: receipt.time can be 174 characters",
        ),
    ],
)
def test_each_problem_in_the_catalogue_is_named_with_where_it_is(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], needle: str | None, expected: str
) -> None:
    path = _write(tmp_path, change)
    if needle is not None:
        expected = expected.replace("{line}", str(_line(path, needle)))
    found = [str(p) for p in check_texts(path, CONSTANTS)[1]]
    if "can be 129" in expected:  # within one SMS: not a problem
        assert found == []
        return
    assert any(p.startswith(expected) or expected in p for p in found), found


def test_the_last_wording_must_fit_the_longest_receipt_in_one_sms(tmp_path: Path) -> None:
    # Without its compact wording, the label of three 15-digit codes makes the longest
    # Swahili receipt overflow one SMS.
    path = _write(
        tmp_path,
        lambda t: t["receipt"]["codes"].update(sw=["Tokeni, andika kwa mpangilio huu: {codes}"]),
    )
    problems = [str(p) for p in check_texts(path, CONSTANTS)[1]]
    assert len(problems) == 1, problems
    assert problems[0].startswith("texts.yaml:") and problems[0].endswith(
        ", language sw: receipt.time can be 167 characters with the longest values "
        "(one SMS holds 160)"
    )


def test_a_long_distributor_name_makes_the_reminders_too_long() -> None:
    _, problems = check_texts(SHIPPED, {**CONSTANTS, "distributor": "D" * 60})
    assert any("reminder.expiry can be" in str(p) for p in problems)
    with pytest.raises(FlowError, match="reminder.expiry can be"):
        load_texts(SHIPPED, {**CONSTANTS, "distributor": "D" * 60})


def test_a_file_that_is_not_a_catalogue_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "texts.yaml").write_text("receipt: [unclosed")
    texts, problems = read_texts(tmp_path / "texts.yaml")
    assert texts is None and str(problems[0]).startswith("texts.yaml: cannot be read")


def test_receipts_and_reminders_render_from_the_catalogue_they_are_given(tmp_path: Path) -> None:
    def friendlier(raw: dict[str, Any]) -> None:
        raw["reminder"]["expiry"]["en"] = "{distributor}: light until {date}. Acc {account}."
        raw["receipt"]["code"]["en"] = "Your code: {codes}"

    texts, problems = read_texts(_write(tmp_path, friendlier))
    assert texts is not None and problems == []
    body = reminders.render(
        "expiry", "en", texts=texts, distributor="SunPower", paybill="1", account="2", date="3 Dec"
    )
    assert body == "SunPower: light until 3 Dec. Acc 2."
    wordings = receipts.receipt_wordings(texts, "en", "time", codes=1, refund=False)
    assert wordings[0].startswith("Thank you! {amount} received, acc {account}. Your code: {codes}")
    assert sms.encoding(body) == "gsm7"


# paygo flows check ----------------------------------------------------------------------------


def test_flows_check_validates_the_texts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(flows_group, ["check", "--dir", str(SHIPPED_FLOWS), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["texts"] == str(SHIPPED)
    plain = CliRunner().invoke(flows_group, ["check", "--dir", str(SHIPPED_FLOWS)])
    assert "texts.yaml: ok (14 messages, en, sw, fr)" in plain.output
    monkeypatch.setenv("DISTRIBUTOR_NAME", "D" * 60)
    long = CliRunner().invoke(flows_group, ["check", "--dir", str(SHIPPED_FLOWS), "--json"])
    assert long.exit_code == 1
    assert any("reminder.expiry can be" in p for p in json.loads(long.output)["problems"])


# A catalogue of the install's own (FLOWS_DIR) ---------------------------------------------------


def _flows_with_texts(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A flows folder: the shipped flows, and a texts.yaml changed by `change`."""
    for name in ("ussd.yaml", "sms.yaml"):
        (tmp_path / name).write_text((SHIPPED_FLOWS / name).read_text(encoding="utf-8"))
    _write(tmp_path, change)
    return tmp_path


def _own_code_label(raw: dict[str, Any]) -> None:
    raw["receipt"]["code"]["en"] = "Your own code: {codes}"


def test_a_texts_catalogue_in_flows_dir_words_the_receipts(
    make_app: Callable[..., Flask], tmp_path: Path, shared_dir: Path
) -> None:
    app = make_app(flows_dir=str(_flows_with_texts(tmp_path, _own_code_label)))
    gateway: Gateway = app.extensions["paygo"]
    with gateway.db.session() as session:
        made = account(session, gateway)
        session.commit()
        assert MpesaPaybill(app.test_client(), shared_dir).pay(made.number).status_code == 200
        (receipt,) = session.exec(select(OutboundMessage)).all()
    assert "Your own code: " in receipt.body


def test_flows_check_checks_the_texts_in_the_flows_folder(tmp_path: Path) -> None:
    folder = _flows_with_texts(tmp_path, _own_code_label)
    result = CliRunner().invoke(flows_group, ["check", "--dir", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["texts"] == str(folder / "texts.yaml")
    _flows_with_texts(tmp_path, lambda raw: raw["receipt"]["code"].pop("sw"))
    broken = CliRunner().invoke(flows_group, ["check", "--dir", str(folder), "--json"])
    assert broken.exit_code == 1
    assert any("receipt.code" in p and "sw" in p for p in json.loads(broken.output)["problems"])


def test_the_app_refuses_to_start_with_broken_texts_in_flows_dir(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    folder = _flows_with_texts(tmp_path, lambda raw: raw["receipt"]["code"].pop("sw"))
    with pytest.raises(FlowError, match="receipt.code"):
        make_app(flows_dir=str(folder))
