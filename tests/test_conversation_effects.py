"""Flow actions only read: what they change comes back as effects the service applies."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlmodel import Session, select

from paygo.conversations.effects import CountWrongNumber, OpenTicket, SetLanguage
from paygo.conversations.engine import Turn
from paygo.conversations.service import Conversations
from paygo.gateway import Gateway
from paygo.models import Customer, Ticket
from tests.conversation_data import (
    KNOWN,
    NOW,
    OTHER,
    STRANGER,
    account,
    set_clock,
    wrong_numbers_stored,
)


def _conv(gateway: Gateway) -> Conversations:
    return gateway.conversations


def _run(conv: Conversations, phone: str, inputs: list[str], *, apply: bool) -> Turn:
    """Dial and answer through the engine, applying the effects of the last step or not."""
    ctx = conv.context(phone=phone, channel="ussd")
    try:
        turn = conv.applied(ctx, conv.engine.begin("ussd", lang="en", context=ctx))
        for text in inputs[:-1]:
            turn = conv.applied(ctx, conv.engine.resume(turn.state, text, context=ctx))
        turn = conv.engine.resume(turn.state, inputs[-1], context=ctx)
        if apply:
            turn = conv.applied(ctx, turn)
        ctx.close(commit=True)
    finally:
        ctx.close(commit=False)
    return turn


def _language(session: Session, customer_id: Any) -> str:
    session.expire_all()
    customer = session.get(Customer, customer_id)
    assert customer is not None
    return customer.language


def test_choosing_a_language_is_an_effect_written_only_when_applied(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    made = account(session, gateway)
    turn = _run(_conv(gateway), KNOWN, ["4", "3"], apply=False)
    assert turn.effects == (SetLanguage(phone=KNOWN, language="fr"),)
    assert turn.reply.text == "C'est fait: nous vous parlerons en francais."
    assert _language(session, made.customer_id) == "en"
    session.rollback()
    _run(_conv(gateway), KNOWN, ["4", "3"], apply=True)
    assert _language(session, made.customer_id) == "fr"


def test_a_ticket_is_stored_by_the_service_and_its_number_finishes_the_screen(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    made = account(session, gateway)
    turn = _run(_conv(gateway), KNOWN, ["5", "Light off"], apply=False)
    (effect,) = turn.effects
    assert isinstance(effect, OpenTicket) and turn.reply.awaiting == ("ticket",)
    assert (effect.account_id, effect.body, effect.at) == (made.id, "Light off", NOW)
    assert session.exec(select(Ticket)).first() is None
    session.rollback()
    turn = _run(_conv(gateway), KNOWN, ["5", "Light off"], apply=True)
    ticket = session.exec(select(Ticket)).one()
    assert turn.reply.text.startswith(f"Thank you. Your ticket number is {ticket.id}.")
    assert not turn.reply.awaiting and turn.effects == ()


def test_a_wrong_account_number_is_counted_only_when_applied(
    app: Flask, session: Session, gateway: Gateway
) -> None:
    set_clock(app, NOW)
    account(session, gateway, phone=OTHER)
    turn = _run(_conv(gateway), STRANGER, ["10000012"], apply=False)
    assert turn.effects == (CountWrongNumber(phone=STRANGER, at=NOW),)
    assert wrong_numbers_stored(session, STRANGER) == []
    for _ in range(2):
        session.rollback()
        turn = _run(_conv(gateway), STRANGER, ["10000012"], apply=True)
    assert len(wrong_numbers_stored(session, STRANGER)) == 2
    session.rollback()
    # The third wrong number locks the phone: the action reads the two counted so far.
    third = _run(_conv(gateway), STRANGER, ["10000012"], apply=False)
    assert third.reply.text.startswith("Too many wrong account numbers")
    assert third.effects == (CountWrongNumber(phone=STRANGER, at=NOW),)
