"""M-Pesa portal statements: payments whose callbacks never came, added once."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlmodel import Session

from paygo.errors import ImportFailed
from paygo.gateway import Gateway
from paygo.models import PaymentStatus
from paygo.payments.statement import parse_statement, parse_time
from tests.payment_helpers import MpesaPaybill, account_numbered, ledger, payments


@pytest.fixture
def statement(shared_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "statement.csv"
    shutil.copy(shared_dir / "providers" / "mpesa_org_statement.csv", path)
    return path


@pytest.fixture
def customers(session: Session, gateway: Gateway) -> None:
    """Wanjiku (10000018) and Otieno (10000026) of the sample; Amina is no customer."""
    account_numbered(session, gateway, "10000018", phone="+254711000001")
    account_numbered(session, gateway, "10000026", phone="+254722000002")


def import_(runner: FlaskCliRunner, path: Path) -> dict[str, Any]:
    result = runner.invoke(args=["payments", "import-statement", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_statement_adds_missed_payments_and_reports_them(
    runner: FlaskCliRunner, session: Session, statement: Path, customers: None
) -> None:
    report = import_(runner, statement)
    assert (report["new"], report["known"], report["unmatched"], report["credited"]) == (3, 0, 1, 2)
    assert report["skipped"] == 3  # the charge, the settlement to bank, the failed attempt
    by_receipt = {p.provider_txn_id: p for p in payments(session)}
    assert set(by_receipt) == {"TKQ8Z1M4RC", "TKQ7Y0L3QB", "TKQ6X9K2PA"}
    otieno = by_receipt["TKQ7Y0L3QB"]
    assert (otieno.amount, otieno.match_rule) == (100000, "normalised_reference")
    assert otieno.payer == "254722000002" and otieno.payer_name == "OTIENO ODHIAMBO"
    assert otieno.paid_at == datetime(2026, 11, 20, 6, 15, tzinfo=UTC)
    amina = by_receipt["TKQ6X9K2PA"]
    assert amina.status == PaymentStatus.UNMATCHED and amina.payer == "2547****0003"
    assert report["unmatched_ids"] == [amina.id]


def test_importing_the_same_statement_again_changes_nothing(
    runner: FlaskCliRunner, session: Session, statement: Path, customers: None
) -> None:
    import_(runner, statement)
    before = ledger(session)
    report = import_(runner, statement)
    assert (report["new"], report["known"], report["unmatched"]) == (0, 3, 0)
    assert ledger(session) == before


def test_a_payment_whose_callback_came_is_already_known(
    runner: FlaskCliRunner,
    client: FlaskClient,
    session: Session,
    statement: Path,
    customers: None,
    shared_dir: Path,
) -> None:
    MpesaPaybill(client, shared_dir).pay("10000018", receipt="TKQ8Z1M4RC")
    report = import_(runner, statement)
    assert (report["new"], report["known"]) == (2, 1)
    assert ledger(session)["tokens"] == 2


def test_human_report_names_the_counts(
    runner: FlaskCliRunner, statement: Path, customers: None
) -> None:
    result = runner.invoke(args=["payments", "import-statement", str(statement)])
    assert result.exit_code == 0
    assert "3 new payment(s), 0 already known, 1 unmatched" in result.output
    assert "paygo payments assign" in result.output


def test_a_file_that_is_no_statement_is_refused_and_nothing_stored(
    runner: FlaskCliRunner, session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "other.csv"
    path.write_text("Serial Number,Key\nA,B\n")
    result = runner.invoke(args=["payments", "import-statement", str(path)])
    assert result.exit_code == 1 and "Receipt No." in result.output
    binary = tmp_path / "statement.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe")
    result = runner.invoke(args=["payments", "import-statement", str(binary)])
    assert result.exit_code == 1 and "not UTF-8" in result.output
    assert ledger(session)["payments"] == 0


def test_an_unreadable_payment_line_stops_the_whole_import(
    runner: FlaskCliRunner, session: Session, statement: Path, customers: None
) -> None:
    text = statement.read_text().replace("20-11-2026 09:15:00", "yesterday")
    statement.write_text(text)
    result = runner.invoke(args=["payments", "import-statement", str(statement)])
    assert result.exit_code == 1 and "line 7" in result.output and "yesterday" in result.output
    assert ledger(session)["payments"] == 0


def test_both_date_formats_are_read_as_nairobi_time() -> None:
    assert (
        parse_time("20-11-2026 18:02:10")
        == parse_time("2026-11-20 18:02:10")
        == datetime(2026, 11, 20, 15, 2, 10, tzinfo=UTC)
    )
    with pytest.raises(ValueError):
        parse_time("11/20/2026 18:02")


def test_missing_columns_are_named() -> None:
    with pytest.raises(ImportFailed, match="A/C No."):
        parse_statement("Receipt No.,Completion Time,Details,Paid In,Other Party Info\n")
