"""What flow actions ask to change, as data, and how the conversation service applies it.

Actions only read; when one decides that something must change (remember a language, open
a ticket, count a wrong account number) it returns an effect. The service applies the
effects of each engine call in the hop's transaction, after the engine has returned, so a
reader finds every write of a conversation here (goflow's events and their host hooks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, ClassVar

from sqlalchemy import bindparam, update
from sqlmodel import Session, col

from paygo.conversations.engine import Effect
from paygo.conversations.sessions import Lockout
from paygo.models import Customer, Ticket


@dataclass(frozen=True)
class SetLanguage(Effect):
    """Speak `language` to the customer with this phone from now on (none: nothing)."""

    phone: str
    language: str


@dataclass(frozen=True)
class OpenTicket(Effect):
    """Store a customer's problem; its number is the `ticket` value of the screen."""

    provides: ClassVar[tuple[str, ...]] = ("ticket",)
    customer_id: int
    account_id: int
    phone: str
    channel: str
    body: str
    at: datetime


@dataclass(frozen=True)
class CountWrongNumber(Effect):
    """Count one wrong account number typed from this phone, for the lookup lockout."""

    phone: str
    at: datetime


@dataclass(frozen=True)
class Host:
    """What applying effects needs: the hop's ORM session (its transaction) and the lockout."""

    session: Session
    lockout: Lockout


def apply_effects(host: Host, effects: Iterable[Effect]) -> dict[str, str]:
    """Apply effects in order; return the values they provide (the screen awaits them)."""
    values: dict[str, str] = {}
    for effect in effects:
        values.update(_apply(host, effect))
    return values


def _apply(host: Host, effect: Effect) -> Mapping[str, str]:
    match effect:
        case SetLanguage(phone=phone, language=language):
            # One statement: a phone without a customer (someone typing an account number)
            # changes nothing.
            host.session.connection().execute(
                _statements()["set_language"], {"caller": phone, "chosen": language}
            )
            return {}
        case OpenTicket():
            return {"ticket": str(_insert_ticket(host.session, effect))}
        case CountWrongNumber(phone=phone, at=at):
            # On the backplane, so it counts even if the hop fails after this.
            host.lockout.record_failure(phone=phone, now=at)
            return {}
    raise TypeError(f"no way to apply {effect!r}")


def _insert_ticket(session: Session, effect: OpenTicket) -> int:
    ticket = Ticket(
        customer_id=effect.customer_id,
        account_id=effect.account_id,
        phone=effect.phone,
        channel=effect.channel,
        body=effect.body,
        created_at=effect.at,
        updated_at=effect.at,
    )
    session.add(ticket)
    session.flush()
    assert ticket.id is not None
    return ticket.id


@cache
def _statements() -> dict[str, Any]:
    """Statements built once: building one costs more than running it."""
    return {
        "set_language": update(Customer)
        .where(col(Customer.phone) == bindparam("caller"))
        .values(language=bindparam("chosen")),
    }
