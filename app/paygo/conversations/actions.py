"""The actions flows may call: identify the caller, read balances and tokens, quote a
payment, remember a language, open a ticket. Each declares its branches and the longest
value of everything it returns, which is what flow validation measures screens with.

Actions read through the context and never write: a change they decide on is returned as
an effect (`paygo.conversations.effects`), which the conversation service applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from functools import cache, cached_property
from typing import Any, TypeVar

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlmodel import Session, and_, col, or_, select

from paygo import accountnumbers, accounts, credit
from paygo.conversations.effects import CountWrongNumber, OpenTicket, SetLanguage
from paygo.conversations.engine import Actions, ListSpec, Outcome
from paygo.conversations.sessions import Lockout
from paygo.errors import NotFound
from paygo.models import Account, AccountStatus, Customer, Device, PaymentPlan, Token
from paygo.money import exponent, to_minor
from paygo.settings import Settings
from paygo.texts import formats

ACTIONS = Actions()
MONEY, DATE, DAYS = formats.MONEY, formats.DATE, formats.DAYS
ACCOUNT = 12  # Account.number
CODE = 31  # a 24-digit code grouped in threes
MAX_TOKENS_LISTED = 10
MAX_ACCOUNTS_LISTED = 20
#: The statuses a customer can ask about (closed and repossessed accounts are not shown).
VISIBLE = (*accounts.OPEN_STATUSES, AccountStatus.PAID_OFF)


@dataclass
class Context:
    """What actions need from the outside world, for one hop or one message.

    `engine` is the gateway's engine, in autocommit mode on PostgreSQL: actions read and
    effects write with single statements, so a hop costs no BEGIN and COMMIT round trips.
    Reads go straight to the hop's connection (the ORM costs more than the query); the ORM
    session, for the ORM's reads and the effects' writes, shares that connection and its
    transaction.
    """

    engine: Engine
    settings: Settings
    lockout: Lockout
    phone: str
    now: datetime
    channel: str
    _connection: Connection | None = field(default=None, repr=False)
    _session: Session | None = field(default=None, repr=False)

    def connection(self) -> Connection:
        """The hop's connection, opened (with its transaction) when an action needs it."""
        if self._connection is None:
            self._connection = self.engine.connect()
            self._connection.begin()
        return self._connection

    @property
    def session(self) -> Session:
        """An ORM session on the hop's connection and transaction."""
        if self._session is None:
            self._session = Session(bind=self.connection(), expire_on_commit=False)
        return self._session

    def close(self, *, commit: bool) -> None:
        """Commit (or roll back) and close the hop's transaction, if one was opened."""
        connection, session = self._connection, self._session
        self._connection = self._session = None
        if connection is None:
            return
        try:
            if session is not None and commit:
                session.flush()
            transaction = connection.get_transaction()
            if transaction is not None:
                transaction.commit() if commit else transaction.rollback()
        finally:
            if session is not None:
                session.close()
            connection.close()


def _customer_for_phone(ctx: Context) -> Customer | None:
    return ctx.session.exec(select(Customer).where(Customer.phone == ctx.phone)).first()


_ACCOUNT_FIELDS = (
    "id",
    "number",
    "customer_id",
    "device_id",
    "plan_id",
    "status",
    "total_paid",
    "remainder",
    "overpayment",
)
_PLAN_FIELDS = (
    "id",
    "name",
    "currency",
    "deposit",
    "deposit_days",
    "price_per_day",
    "min_payment",
    "total_price",
)


class Held:
    """An account as this hop read it, with its plan, the box's divider and time zone.

    Plain data; the model objects the credit rules take are built only when a screen
    needs them.
    """

    def __init__(self, facts: Mapping[str, Any]) -> None:
        self.facts = facts
        self.number: str = facts["account"]["number"]
        self.status: str = facts["account"]["status"]
        self.currency: str = facts["plan"]["currency"]
        self.divider: int = facts["divider"]
        self.zone: str = facts["zone"]

    @cached_property
    def account(self) -> Account:
        until = self.facts["credit_until"]
        return _copy(
            Account,
            {
                **self.facts["account"],
                "credit_until": datetime.fromisoformat(until) if until else None,
            },
        )

    @cached_property
    def plan(self) -> PaymentPlan:
        return _copy(PaymentPlan, self.facts["plan"])


M = TypeVar("M", Account, PaymentPlan)


def _copy(model: type[M], values: Mapping[str, Any]) -> M:
    """A read-only copy for the credit rules, built without re-validating stored data.

    The model's constructor validates every field (a third of a hop's time); these values
    came from the database moments ago, so SQLAlchemy's bare instance is enough.
    """
    instance: M = manager_of_class(model).new_instance()
    for name, value in values.items():
        setattr(instance, name, value)
    return instance


@cache
def _statements() -> dict[str, Any]:
    """The hop's queries, built once: building a statement costs more than running it."""
    columns = [getattr(Account, f) for f in _ACCOUNT_FIELDS] + [Account.credit_until]
    columns += [getattr(PaymentPlan, f) for f in _PLAN_FIELDS]
    columns += [Device.time_divider, Customer.timezone, Customer.language]
    accounts = (
        sa_select(*columns)
        .join(PaymentPlan, col(PaymentPlan.id) == col(Account.plan_id))
        .join(Device, col(Device.id) == col(Account.device_id))
        .join(Customer, col(Customer.id) == col(Account.customer_id))
        .where(col(Account.status).in_(VISIBLE))
    )
    # The account and its box's newest codes in one round trip (an account without codes is
    # one row of NULL codes): a token screen costs one query, as every other screen does.
    of_box = and_(
        col(Token.device_id) == col(Account.device_id),
        or_(col(Token.account_id) == col(Account.id), col(Token.account_id).is_(None)),
    )
    token_columns: list[Any] = [
        col(Token.id).label("token_id"),
        col(Token.code).label("token_code"),
        col(Token.created_at).label("token_created_at"),
        col(Token.days).label("token_days"),
    ]
    by_number = accounts.where(col(Account.number) == bindparam("number"))
    with_tokens = by_number.add_columns(*token_columns).order_by(col(Token.count).desc())
    return {
        "by_number": by_number,
        "by_phone": accounts.where(col(Customer.phone) == bindparam("phone"))
        .order_by(col(Account.id))
        .limit(MAX_ACCOUNTS_LISTED),
        "newest_tokens": with_tokens.outerjoin(Token, of_box).limit(bindparam("limit")),
        "one_token": with_tokens.outerjoin(
            Token, and_(of_box, col(Token.id) == bindparam("token_id"))
        ),
    }


def _query(ctx: Context, name: str, **params: Any) -> list[Any]:
    return list(ctx.connection().execute(_statements()[name], params))


def _facts(ctx: Context, row: Any) -> dict[str, Any]:
    """The account columns of a row of the accounts queries as plain facts."""
    values = list(row)
    account = dict(zip(_ACCOUNT_FIELDS, values, strict=False))
    until = values[len(_ACCOUNT_FIELDS)]
    rest = values[len(_ACCOUNT_FIELDS) + 1 :]
    plan = dict(zip(_PLAN_FIELDS, rest, strict=False))
    divider, zone, language = rest[len(_PLAN_FIELDS) : len(_PLAN_FIELDS) + 3]
    return {
        "account": account,
        "credit_until": until.isoformat() if until else None,
        "plan": plan,
        "divider": divider,
        "language": language,
        "zone": zone or ctx.settings.default_timezone,
    }


def _held(ctx: Context, data: Mapping[str, Any]) -> Held:
    """The conversation's account as it is now (one indexed query)."""
    number = str(data["account"])
    rows = _query(ctx, "by_number", number=number)
    if not rows:
        raise NotFound(f"no open account {number}", account=number)
    return Held(_facts(ctx, rows[0]))


def _smallest_payment(held: Held) -> int:
    """The least that buys any time: the plan's minimum or one unit, whichever is more."""
    return max(held.plan.min_payment, credit.unit(held.plan, held.divider)[1])


# Who is calling --------------------------------------------------------------------------


@ACTIONS.register(
    "identify",
    branches=("one", "many", "unknown", "locked"),
    produces={"account": ACCOUNT},
    lists={
        "accounts": ListSpec(label_width=32, value_width=ACCOUNT, max_items=MAX_ACCOUNTS_LISTED)
    },
)
def identify(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """Find the caller's accounts (as `accounts_for_phone` does, with what the menus need)."""
    rows = _query(ctx, "by_phone", phone=ctx.phone)
    if not rows:
        locked = ctx.lockout.locked(phone=ctx.phone, now=ctx.now)
        return Outcome(branch="locked" if locked else "unknown")
    found = [_facts(ctx, row) for row in rows]
    lang = found[0]["language"]
    if len(found) == 1:
        return Outcome(branch="one", data={"account": found[0]["account"]["number"]}, lang=lang)
    listed = [
        {
            "label": f"{facts['account']['number']} {facts['plan']['name']}"[:32].rstrip(),
            "value": facts["account"]["number"],
        }
        for facts in found
    ]
    return Outcome(branch="many", data={"accounts": listed}, lang=lang)


@ACTIONS.register(
    "lookup_account", branches=("ok", "wrong", "locked"), produces={"account": ACCOUNT}
)
def lookup_account(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """Check an account number typed by an unknown caller, counting wrong ones."""
    number = str(data.get("typed_account", ""))
    return _lookup(ctx, number, ok="ok", wrong="wrong")


def _lookup(ctx: Context, number: str, *, ok: str, wrong: str) -> Outcome:
    if ctx.lockout.locked(phone=ctx.phone, now=ctx.now):
        return Outcome(branch="locked")
    if not _query(ctx, "by_number", number=number):
        count, _ = ctx.lockout.recent(phone=ctx.phone, now=ctx.now)
        return Outcome(
            branch="locked" if ctx.lockout.locks_at(count) else wrong,
            effects=(CountWrongNumber(phone=ctx.phone, at=ctx.now),),
        )
    return Outcome(branch=ok, data={"account": number})


# Balance, tokens, paying -----------------------------------------------------------------


@ACTIONS.register(
    "balance",
    branches=("ok", "paid_off"),
    produces={
        "account": ACCOUNT,
        "days_left": DAYS,
        "credit_until": DATE,
        "paid": MONEY,
        "left_to_pay": MONEY,
        "due": DATE,
    },
)
def balance(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """The account's credit: days left, credit-until, paid, left to pay, next payment."""
    held = _held(ctx, data)
    account, plan, cur = held.account, held.plan, held.plan.currency
    paid = formats.money(account.total_paid, cur)
    if account.status == AccountStatus.PAID_OFF:
        return Outcome(branch="paid_off", data={"account": account.number, "paid": paid})
    left = None if plan.total_price is None else max(0, plan.total_price - account.total_paid)
    return Outcome(
        data={
            "account": account.number,
            "days_left": formats.days(credit.days_left(account, ctx.now)),
            "credit_until": formats.date(account.credit_until, held.zone),
            "paid": paid,
            "left_to_pay": "-" if left is None else formats.money(left, cur),
            "due": formats.date(credit.next_payment_due(plan, account), held.zone),
        }
    )


_TOKEN_VALUES = {"account": ACCOUNT, "code": CODE, "token_date": DATE, "token_days": DAYS}


def _with_tokens(
    ctx: Context, data: Mapping[str, Any], limit: int, token_id: int | None = None
) -> tuple[Held, list[Any]]:
    """The conversation's account and its box's newest stored codes (nothing is issued)."""
    number = str(data["account"])
    if token_id is not None:
        rows = _query(ctx, "one_token", number=number, token_id=token_id)
    else:
        rows = _query(ctx, "newest_tokens", number=number, limit=limit)
    if not rows:
        raise NotFound(f"no open account {number}", account=number)
    return Held(_facts(ctx, rows[0])), [row for row in rows if row.token_id is not None]


def _token_outcome(held: Held, token: Any | None) -> Outcome:
    if token is None:
        return Outcome(branch="none", data={"account": held.number})
    return Outcome(
        data={
            "account": held.number,
            "code": formats.code(token.token_code),
            "token_date": formats.date(token.token_created_at, held.zone),
            "token_days": formats.days(token.token_days),
        }
    )


@ACTIONS.register("last_token", branches=("ok", "none"), produces=_TOKEN_VALUES)
def last_token(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """The account's newest code again (never a new one)."""
    held, newest = _with_tokens(ctx, data, 1)
    return _token_outcome(held, newest[0] if newest else None)


@ACTIONS.register(
    "token_history",
    branches=("ok", "none"),
    produces={"account": ACCOUNT},
    lists={
        "tokens": ListSpec(label_width=DATE + 1 + CODE, value_width=12, max_items=MAX_TOKENS_LISTED)
    },
)
def token_history(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """The last few codes with their dates, newest first."""
    held, newest = _with_tokens(ctx, data, MAX_TOKENS_LISTED)
    listed = [
        {
            "label": f"{formats.date(t.token_created_at, held.zone)} {formats.code(t.token_code)}",
            "value": str(t.token_id),
        }
        for t in newest
    ]
    if not listed:
        return Outcome(branch="none", data={"account": held.number})
    return Outcome(data={"tokens": listed})


@ACTIONS.register("chosen_token", branches=("ok", "none"), produces=_TOKEN_VALUES)
def chosen_token(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """The code picked from the history."""
    wanted = str(data.get("token_id", ""))
    # A value that is not a token id finds no token (0 is never one).
    held, found = _with_tokens(ctx, data, 1, token_id=int(wanted) if wanted.isdigit() else 0)
    return _token_outcome(held, found[0] if found else None)


@ACTIONS.register(
    "pay_info",
    branches=("ok", "paid_off"),
    produces={"account": ACCOUNT, "price_per_day": MONEY, "minimum": MONEY},
)
def pay_info(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """What to type on the PayBill and what a day costs."""
    held = _held(ctx, data)
    if held.status == AccountStatus.PAID_OFF:
        return Outcome(branch="paid_off", data={"account": held.number})
    cur = held.currency
    return Outcome(
        data={
            "account": held.number,
            "price_per_day": formats.money(held.plan.price_per_day, cur),
            "minimum": formats.money(_smallest_payment(held), cur),
        }
    )


@ACTIONS.register(
    "quote",
    branches=("time", "deposit", "below_minimum", "pays_off", "paid_off"),
    produces={
        "account": ACCOUNT,
        "amount_text": MONEY,
        "days": DAYS,
        "credit_until": DATE,
        "deposit_left": MONEY,
        "minimum": MONEY,
    },
)
def quote(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """What an amount would buy, computed without changing anything."""
    held = _held(ctx, data)
    account, cur = held.account, held.plan.currency
    if account.status == AccountStatus.PAID_OFF:
        return Outcome(branch="paid_off", data={"account": account.number})
    # Amounts are typed in major units; a currency without cents drops what it cannot hold.
    typed = Decimal(str(data["amount"])).quantize(
        Decimal(1).scaleb(-exponent(cur)), rounding=ROUND_DOWN
    )
    q = credit.quote(
        plan=held.plan,
        account=account,
        amount=to_minor(typed, cur),
        now=ctx.now,
        divider=held.divider,
    )
    base = {"account": account.number, "amount_text": formats.money(q.amount, cur)}
    if q.pays_off:
        return Outcome(branch="pays_off", data=base)
    if q.deposit_left > 0:
        return Outcome(
            branch="deposit", data={**base, "deposit_left": formats.money(q.deposit_left, cur)}
        )
    if q.below_minimum or not q.buys_time:
        smallest = formats.money(_smallest_payment(held), cur)
        return Outcome(branch="below_minimum", data={**base, "minimum": smallest})
    return Outcome(
        branch="time",
        data={
            **base,
            "days": formats.days(q.days),
            "credit_until": formats.date(q.credit_until, held.zone),
        },
    )


# Language and tickets --------------------------------------------------------------------


@ACTIONS.register("set_language", produces={})
def set_language(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """Speak the chosen language from now on, and remember it for a known customer."""
    lang = str(data.get("new_language", ""))
    if lang not in accounts.LANGUAGES:
        lang = ctx.settings.default_language
    return Outcome(lang=lang, effects=(SetLanguage(phone=ctx.phone, language=lang),))


@ACTIONS.register("create_ticket", produces={"ticket": 10})
def create_ticket(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """Open a ticket with the customer's own words (its number comes once it is stored)."""
    account = _held(ctx, data).facts["account"]
    ticket = OpenTicket(
        customer_id=account["customer_id"],
        account_id=account["id"],
        phone=ctx.phone,
        channel=ctx.channel,
        body=str(data.get("problem", "")),
        at=ctx.now,
    )
    return Outcome(effects=(ticket,))


# SMS commands ----------------------------------------------------------------------------


@ACTIONS.register(
    "sms_start",
    branches=(
        "help",
        "language",
        "language_help",
        "ask_account",
        "several",
        "bad_number",
        "not_found",
        "locked",
        "balance",
        "token",
        "pay",
    ),
    produces={"account": ACCOUNT, "account_list": 64, "new_language": 2},
)
def sms_start(ctx: Context, data: Mapping[str, Any]) -> Outcome:
    """Route a parsed SMS command: who is asking, about which account."""
    command = str(data.get("command", "help"))
    customer = _customer_for_phone(ctx)
    lang = customer.language if customer else None
    if command == "help":
        return Outcome(branch="help", lang=lang)
    if command == "language":
        wanted = str(data.get("language_arg", ""))
        if customer is None:
            return Outcome(branch="ask_account")
        if wanted not in accounts.LANGUAGES:
            return Outcome(branch="language_help", lang=lang)
        return Outcome(branch="language", data={"new_language": wanted}, lang=lang)
    outcome = _sms_account(ctx, str(data.get("account_arg", "")))
    branch = command if outcome.branch == "ok" else outcome.branch
    return replace(outcome, branch=branch, lang=lang)


def _sms_account(ctx: Context, typed: str) -> Outcome:
    own = accounts.accounts_for_phone(session=ctx.session, phone=ctx.phone)
    if typed:
        if not accountnumbers.is_valid(typed):
            return Outcome(branch="bad_number")
        if any(a.number == typed for a in own):
            return Outcome(data={"account": typed})
        return _lookup(ctx, typed, ok="ok", wrong="not_found")
    if not own:
        return Outcome(branch="ask_account")
    if len(own) > 1:
        listed = ", ".join(a.number for a in own)
        if len(listed) > 64:
            listed = listed[:60].rsplit(",", 1)[0] + ", ..."
        return Outcome(branch="several", data={"account_list": listed, "account": own[0].number})
    return Outcome(data={"account": own[0].number})
