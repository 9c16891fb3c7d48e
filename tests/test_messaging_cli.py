"""`paygo messages`: list, the dead letters, retry by hand, sweep and reconcile for cron."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask
from sqlmodel import select

from paygo.models import AuditLog, MessageStatus
from tests.fakes.at_api import FakeAfricasTalking
from tests.messaging_helpers import KE, gateway_of, queue, row

OTHER = "+254722000002"


def _queue(app: Flask, body: str, to: str = KE) -> int:
    (message_id,) = queue(gateway_of(app), body, to=to)
    return message_id


def _status(app: Flask, message_id: int) -> str:
    return str(row(gateway_of(app), message_id).status)


def _invoke(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=list(args))
    return result.exit_code, result.output


def test_failed_lists_dead_letters_with_their_reason(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings())
    at.recipient_codes[KE] = 406
    failed = _queue(app, "blacklisted")
    _queue(app, "fine", to=OTHER)
    code, output = _invoke(app, "messages", "failed")
    [row] = [line for line in output.splitlines() if "blacklisted" in line]
    assert code == 0 and row.split()[:1] == [str(failed)] and KE in row and "406" in row
    assert "fine" not in output
    code, output = _invoke(app, "messages", "failed", "--json")
    assert [m["id"] for m in json.loads(output)["messages"]] == [failed]


def test_failed_says_so_when_there_are_none(app: Flask) -> None:
    assert _invoke(app, "messages", "failed")[1].strip() == "no failed messages"


def test_retry_sends_a_dead_letter_again_and_audits_it(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings())
    at.recipient_codes[KE] = 406
    failed = _queue(app, "second chance")
    del at.recipient_codes[KE]  # the customer asked their network to unblock us
    code, output = _invoke(app, "messages", "retry", str(failed))
    assert code == 0 and f"#{failed}" in output
    assert _status(app, failed) == MessageStatus.SENT
    assert at.bodies_to(KE) == ["second chance"]
    with app.extensions["paygo"].db.session() as session:
        audit = session.exec(select(AuditLog).where(AuditLog.action == "message.retry")).one()
    assert audit.target_id == str(failed)


def test_retry_all_sends_every_dead_letter_again(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings())
    at.recipient_codes.update({KE: 406, OTHER: 406})
    ids = [_queue(app, "one"), _queue(app, "two", to=OTHER)]
    at.recipient_codes.clear()
    code, output = _invoke(app, "messages", "retry", "--all", "--json")
    assert code == 0 and sorted(json.loads(output)["retried"]) == ids
    assert [_status(app, i) for i in ids] == ["sent", "sent"]


def test_retry_refuses_a_message_that_did_not_fail(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings())
    sent = _queue(app, "delivered fine")
    code, output = _invoke(app, "messages", "retry", str(sent))
    assert code == 1 and "only failed or undeliverable" in output
    assert at.bodies_to(KE) == ["delivered fine"]


@pytest.mark.parametrize("args", [[], ["1", "--all"], ["999"]])
def test_retry_needs_one_existing_id_or_all(app: Flask, args: list[str]) -> None:
    code, output = _invoke(app, "messages", "retry", *args)
    assert code == 1 and "error:" in output


def test_sweep_and_reconcile_commands_report_counts(app: Flask) -> None:
    code, output = _invoke(app, "messages", "sweep", "--json")
    assert code == 0 and json.loads(output) == {"due": 0, "reconciling": 0}
    code, output = _invoke(app, "messages", "reconcile")
    assert code == 0 and "checked: 0" in output


def test_list_filters_by_status_and_shows_reasons(
    make_app: Callable[..., Flask], at: FakeAfricasTalking
) -> None:
    app = make_app(**at.settings())
    at.recipient_codes[KE] = 403
    _queue(app, "bad number")
    _queue(app, "good", to=OTHER)
    code, output = _invoke(app, "messages", "list", "--status", "sent")
    assert code == 0 and "good" in output and "bad number" not in output
    code, output = _invoke(app, "messages", "list", "--to", "0711000001")
    assert "InvalidPhoneNumber" in output and "good" not in output
