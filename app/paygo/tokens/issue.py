"""Issuing tokens: the device count advances under a row lock, in the caller's transaction.

Every token is stored (device, count, type, value, code, reason, payment) in the same
transaction that advances the count, so a code is never lost and a count never reused;
the (device_id, count) unique constraint backs this up in the database itself. What a
payment or an operator does to the account around the code is `paygo.ledger`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from paygo.crypto import KeyBox
from paygo.db import lock_row
from paygo.errors import TokenError
from paygo.models import Account, Device, Payment, Token, row_id, utcnow
from paygo.pages import Page, page
from paygo.tokens import codec
from paygo.tokens.codec import TokenKind


@dataclass(frozen=True)
class Piece:
    """One code's worth of a request: its kind and raw value (days x divider)."""

    kind: TokenKind
    value_raw: int


def lock_device(*, session: Session, device_id: int) -> Device:
    """Load a device with its row locked (PostgreSQL) for the rest of the transaction."""
    device = lock_row(session, Device, device_id)
    if device is None:
        raise TokenError(f"no device #{device_id}", device_id=device_id)
    return device


def device_params(keys: KeyBox, device: Device) -> codec.DeviceCodeParams:
    """The codec's view of a device (decrypts its key; never store the result)."""
    return codec.DeviceCodeParams.from_hex(
        keys.open(device.secret_key_encrypted),
        device.starting_code,
        restricted=device.restricted_digit_mode,
        extended=device.extended_tokens,
    )


def plan_pieces(kind: TokenKind, steps: int, *, extended: bool) -> list[Piece]:
    """Split a request into codes a box accepts (995 days a standard code)."""
    if kind in (TokenKind.DISABLE_PAYG, TokenKind.COUNTER_SYNC):
        return [Piece(kind, 0)]
    if steps < 0:
        raise TokenError("a token cannot carry negative time", steps=steps)
    limit = codec.MAX_EXTENDED_VALUE if extended else codec.MAX_STANDARD_VALUE
    if kind is TokenKind.SET_TIME:
        # SET_TIME is absolute: set the first piece, add the rest on top.
        first = _avoid_reserved(min(steps, limit), extended)
        rest = [Piece(TokenKind.ADD_TIME, v) for v in _chunks(steps - first, limit, extended)]
        return [Piece(kind, first), *rest]
    return [Piece(kind, v) for v in _chunks(steps, limit, extended)] or [Piece(kind, 0)]


def _chunks(steps: int, limit: int, extended: bool) -> list[int]:
    pieces: list[int] = []
    while steps > 0:
        piece = _avoid_reserved(min(steps, limit), extended)
        pieces.append(piece)
        steps -= piece
    return pieces


def _avoid_reserved(value: int, extended: bool) -> int:
    # An extended code carrying 998 or 999 reads as DISABLE_PAYG / COUNTER_SYNC on the box.
    if extended and value in (codec.DISABLE_VALUE, codec.SYNC_VALUE):
        return codec.DISABLE_VALUE - 1
    return value


def issue_token(
    *,
    session: Session,
    keys: KeyBox,
    device: Device,
    kind: TokenKind,
    steps: int = 0,
    reason: str,
    account: Account | None = None,
    payment: Payment | None = None,
    actor: str = "system",
) -> list[Token]:
    """Generate, store and count the code(s) for one request on a device the caller locked
    (`lock_device`), so its count is the database's and no one else's."""
    params = device_params(keys, device)
    tokens = []
    for piece in plan_pieces(kind, steps, extended=device.extended_tokens):
        new_count, code = codec.generate(
            params, kind=piece.kind, value_raw=piece.value_raw, current_count=device.token_count
        )
        token = Token(
            device_id=row_id(device.id),
            count=new_count,
            type=piece.kind,
            days=_days(piece, device.time_divider),
            value_raw=_raw(piece),
            code=code,
            reason=reason[:300],
            created_by=actor[:80],
            account_id=account.id if account else None,
            payment_id=payment.id if payment else None,
        )
        device.token_count = new_count
        session.add(token)
        tokens.append(token)
    device.updated_at = utcnow()
    session.add(device)
    session.flush()
    return tokens


def _days(piece: Piece, divider: int) -> int:
    if piece.kind in (TokenKind.DISABLE_PAYG, TokenKind.COUNTER_SYNC):
        return 0
    return piece.value_raw // divider


def _raw(piece: Piece) -> int:
    if piece.kind is TokenKind.DISABLE_PAYG:
        return codec.DISABLE_VALUE
    if piece.kind is TokenKind.COUNTER_SYNC:
        return codec.SYNC_VALUE
    return piece.value_raw


def recent_tokens(
    *, session: Session, device_id: int, limit: int = 5, account_id: int | None = None
) -> Sequence[Token]:
    """The newest stored tokens of a device (resending reads these; it never issues).

    With `account_id`, only the codes issued for that account (a box taken back and sold
    again keeps its count, but its new owner never sees the old owner's codes).
    """
    query = select(Token).where(Token.device_id == device_id)
    if account_id is not None:
        query = query.where(Token.account_id == account_id)
    return session.exec(query.order_by(col(Token.count).desc()).limit(limit)).all()


def list_tokens(
    *,
    session: Session,
    device_id: int,
    account_id: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Token]:
    """A device's stored tokens, newest count first (only an account's, with `account_id`)."""
    query = select(Token).where(Token.device_id == device_id)
    if account_id is not None:
        query = query.where(Token.account_id == account_id)
    return page(
        session=session,
        query=query,
        listing=f"tokens-{device_id}",
        order=[col(Token.count)],
        key=lambda token: (token.count,),
        limit=limit,
        cursor=cursor,
    )
