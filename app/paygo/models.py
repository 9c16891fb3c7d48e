"""The data model: SQLModel tables. Money is integer minor units; times are aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from paygo.phones import msisdn_digest


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def row_id(value: int | None) -> int:
    """The id of a row that has been flushed (a row not yet written has none)."""
    if value is None:
        raise RuntimeError("row has no id; flush first")
    return value


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores it naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where aware UTC is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def _text(*, nullable: bool = True) -> Any:
    return Field(default=None if nullable else "", sa_type=sa.Text, nullable=nullable)


class DeviceStatus(StrEnum):
    IN_STOCK = "in_stock"
    ASSIGNED = "assigned"
    ACTIVE = "active"
    PAID_OFF = "paid_off"
    REPOSSESSED = "repossessed"
    FAULTY = "faulty"
    RETURNED = "returned"  # back from a customer, to be checked before it goes in stock


class AccountStatus(StrEnum):
    PENDING_DEPOSIT = "pending_deposit"  # created, deposit not yet fully paid
    ACTIVE = "active"
    PAID_OFF = "paid_off"
    REPOSSESSED = "repossessed"
    CLOSED = "closed"


class PaymentStatus(StrEnum):
    RECEIVED = "received"  # stored, not yet reconciled
    CREDITED = "credited"  # matched and credited to an account
    UNMATCHED = "unmatched"  # in the suspense queue for an operator
    FAILED = "failed"  # the provider says the payment did not go through
    REJECTED = "rejected"  # unusable (bad amount, wrong currency)
    REVERSED = "reversed"  # credited, then taken back by an operator


class TicketStatus(StrEnum):
    NEW = "new"  # opened by the customer (USSD, SMS) or an operator
    ASSIGNED = "assigned"  # given to someone
    IN_PROGRESS = "in_progress"  # being worked on
    RESOLVED = "resolved"  # the problem is fixed, the customer not yet told or asked
    CLOSED = "closed"


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"  # dead letter: retries exhausted or permanent error
    UNDELIVERABLE = "undeliverable"  # the provider accepted it, the handset never got it


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    phone: str = Field(max_length=20, unique=True, index=True)  # E.164
    # SHA-256 of the number's digits, as Daraja sends payers; kept by _keep_phone_digest.
    phone_digest: str | None = Field(default=None, max_length=64, index=True)
    language: str = Field(default="en", max_length=5)
    timezone: str = Field(default="Africa/Nairobi", max_length=40)
    created_at: datetime = _created()


@sa.event.listens_for(Customer, "before_insert")
@sa.event.listens_for(Customer, "before_update")
def _keep_phone_digest(_mapper: Any, _connection: Any, customer: Customer) -> None:
    # Written with the number, so a hashed payer is one indexed look-up away.
    customer.phone_digest = msisdn_digest(customer.phone)


class Device(SQLModel, table=True):
    __tablename__ = "devices"

    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(max_length=40, unique=True, index=True)
    hardware_model: str = Field(default="", max_length=80)
    firmware_version: str = Field(default="", max_length=40)
    secret_key_encrypted: str = Field(sa_type=sa.Text, repr=False)
    starting_code: int
    token_count: int = 0
    # The highest count we know the box itself has reached (import, operator confirmation).
    entered_count: int = 0
    time_divider: int = 1
    restricted_digit_mode: bool = False
    extended_tokens: bool = False
    test_code: str | None = Field(default=None, max_length=20)
    status: str = Field(default=DeviceStatus.IN_STOCK, max_length=20, index=True)
    location: str | None = Field(default=None, max_length=200)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class PaymentPlan(SQLModel, table=True):
    __tablename__ = "payment_plans"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True)
    currency: str = Field(max_length=3)
    deposit: int = 0
    deposit_days: int = 0
    price_per_day: int
    min_payment: int = 0
    total_price: int | None = None  # None: pay-per-use, never paid off
    reminder_days_before: int = 2
    created_at: datetime = _created()
    # A retired plan stays on the accounts that have it; no new account is opened on it.
    retired_at: datetime | None = _ts(nullable=True)


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=12, unique=True, index=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    device_id: int = Field(foreign_key="devices.id", index=True)
    plan_id: int = Field(foreign_key="payment_plans.id")
    status: str = Field(default=AccountStatus.PENDING_DEPOSIT, max_length=20, index=True)
    total_paid: int = 0  # every credited payment, minor units
    remainder: int = 0  # paid but not yet turned into days
    overpayment: int = 0  # paid beyond the plan's total: owed back to the customer
    credit_until: datetime | None = _ts(nullable=True)
    activated_at: datetime | None = _ts(nullable=True)
    paid_off_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_txn_id", name="uq_payments_provider_txn"),
        # The payments waiting to be reconciled, in order: a drain claims
        # the first without walking past every credited payment before it.
        sa.Index(
            "ix_payments_waiting",
            "id",
            postgresql_where=sa.text("status = 'received'"),
            sqlite_where=sa.text("status = 'received'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20)
    provider_txn_id: str = Field(max_length=80)
    amount: int  # minor units
    currency: str = Field(max_length=3)
    payer: str | None = Field(default=None, max_length=100)  # as sent: plain, masked or hashed
    payer_name: str | None = Field(default=None, max_length=120)
    reference: str | None = Field(default=None, max_length=120)  # as typed by the customer
    raw: str = _text(nullable=False)
    status: str = Field(default=PaymentStatus.RECEIVED, max_length=20, index=True)
    status_reason: str | None = Field(default=None, max_length=300)
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    match_rule: str | None = Field(default=None, max_length=30)
    paid_at: datetime | None = _ts(nullable=True)
    received_at: datetime = _created()
    credited_at: datetime | None = _ts(nullable=True)
    reversed_at: datetime | None = _ts(nullable=True)


class StkRequest(SQLModel, table=True):
    """An M-Pesa Express push we initiated: its result callback carries no reference."""

    __tablename__ = "stk_requests"

    id: int | None = Field(default=None, primary_key=True)
    checkout_request_id: str = Field(max_length=80, unique=True)
    account_id: int = Field(foreign_key="accounts.id")
    phone: str = Field(max_length=20)
    amount: int
    created_at: datetime = _created()


class Token(SQLModel, table=True):
    __tablename__ = "tokens"
    # A count used twice makes the box reject the second code: the database forbids it.
    __table_args__ = (sa.UniqueConstraint("device_id", "count", name="uq_tokens_device_count"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="devices.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    payment_id: int | None = Field(default=None, foreign_key="payments.id", index=True)
    count: int
    type: str = Field(max_length=20)  # a paygo.tokens.codec.TokenKind value
    days: int = 0  # whole days carried (0 for disable/sync)
    value_raw: int = 0  # the value in the code: days x time divider, 998, 999
    code: str = Field(max_length=24)
    reason: str = Field(default="", max_length=300)
    created_by: str = Field(default="system", max_length=80)
    created_at: datetime = _created()


class OutboundMessage(SQLModel, table=True):
    __tablename__ = "outbound_messages"

    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(max_length=20, index=True)
    body: str = Field(sa_type=sa.Text)
    kind: str = Field(default="reply", max_length=20)
    # Work that must produce at most one message (payment:17, reminder:4:2026-11-30).
    dedupe_key: str | None = Field(default=None, max_length=120, unique=True)
    provider: str | None = Field(default=None, max_length=20)
    provider_message_id: str | None = Field(default=None, max_length=100, index=True)
    status: str = Field(default=MessageStatus.QUEUED, max_length=20, index=True)
    status_reason: str | None = Field(default=None, max_length=300)
    attempts: int = 0
    next_attempt_at: datetime | None = _ts(nullable=True)
    account_id: int | None = Field(default=None, foreign_key="accounts.id", index=True)
    payment_id: int | None = Field(default=None, foreign_key="payments.id")
    created_at: datetime = _created()
    sent_at: datetime | None = _ts(nullable=True)
    delivered_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _created()


class Ticket(SQLModel, table=True):
    __tablename__ = "tickets"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customers.id")
    account_id: int | None = Field(default=None, foreign_key="accounts.id")
    phone: str = Field(max_length=20)
    channel: str = Field(default="ussd", max_length=20)
    body: str = Field(sa_type=sa.Text)
    status: str = Field(default=TicketStatus.NEW, max_length=20, index=True)
    assigned_to: str | None = Field(default=None, max_length=80)
    created_at: datetime = _created()
    updated_at: datetime = _created()
    closed_at: datetime | None = _ts(nullable=True)


class TicketComment(SQLModel, table=True):
    """A note on a ticket: an operator's comment, or why it was assigned or closed."""

    __tablename__ = "ticket_comments"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    author: str = Field(max_length=80)
    body: str = Field(sa_type=sa.Text)
    created_at: datetime = _created()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=80)
    role: str = Field(max_length=20)
    prefix: str = Field(max_length=12)  # shown in listings so a key can be recognised
    key_hash: str = Field(max_length=64, unique=True, repr=False)
    created_at: datetime = _created()
    last_used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _created()
    actor: str = Field(max_length=80)
    action: str = Field(max_length=60, index=True)
    target_type: str | None = Field(default=None, max_length=30)
    target_id: str | None = Field(default=None, max_length=40)
    detail: str = _text(nullable=False)  # JSON


class UssdSession(SQLModel, table=True):
    """How a USSD session ended (the network's notification); its state between hops is
    on the backplane (paygo.conversations.sessions)."""

    __tablename__ = "ussd_sessions"

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(max_length=100, unique=True)
    phone: str = Field(max_length=20, index=True)
    service_code: str = Field(default="", max_length=40)
    state: str | None = _text(nullable=True)  # JSON; None once ended
    hops: int = 0
    status: str | None = Field(default=None, max_length=20)
    duration_ms: int | None = None
    error: str | None = Field(default=None, max_length=300)
    created_at: datetime = _created()
    updated_at: datetime = _created()
    expires_at: datetime | None = _ts(nullable=True)


class BackplaneEntry(SQLModel, table=True):
    """A key, a counter or one member of a scored set, when the backplane is the database
    (no Redis): see paygo.backplane.database."""

    __tablename__ = "backplane_entries"

    key: str = Field(primary_key=True, max_length=200)
    #: "" for a key or a counter; the member's name in a scored set.
    member: str = Field(default="", primary_key=True, max_length=100)
    value: str | None = _text(nullable=True)
    #: A counter's count, or a set member's score.
    score: float | None = None
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


#: JSON text on SQLite; JSONB on PostgreSQL, where the usage aggregation reads into it.
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


class MetricsDataFormat(SQLModel, table=True):
    """A registered OpenPAYGO Metrics data format: never changed, found again by its digest."""

    __tablename__ = "metrics_data_formats"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)  # SHA-256 of the canonical JSON
    body: str = _text(nullable=False)  # canonical JSON
    created_by: str = Field(default="", max_length=80)
    created_at: datetime = _created()


class MetricsBox(SQLModel, table=True):
    """A connected box's OpenPAYGO Metrics state: what it last reported, where it should go."""

    __tablename__ = "metrics_boxes"

    device_id: int = Field(foreign_key="devices.id", primary_key=True)
    # Replay guards: a request is accepted only when newer on each it carries.
    last_request_count: int | None = Field(default=None, sa_type=sa.BigInteger)
    last_timestamp: int | None = Field(default=None, sa_type=sa.BigInteger)
    # The token count the box itself reported last (may be above the server's).
    reported_token_count: int | None = None
    data_format_id: int | None = Field(default=None, foreign_key="metrics_data_formats.id")
    first_seen_at: datetime | None = _ts(nullable=True)
    last_seen_at: datetime | None = _ts(nullable=True, index=True)
    # Set by an operator moving the box: every answer carries it as the `base_url` setting.
    base_url: str | None = Field(default=None, max_length=255)
    moved_at: datetime | None = _ts(nullable=True)


class DeviceData(SQLModel, table=True):
    """One reading of a connected box at one time: its current data or a historical row."""

    __tablename__ = "device_data"
    # Rows arrive roughly in time order, so a BRIN index on time stays tiny on PostgreSQL
    # (a few pages for a year of hourly data from 10,000 boxes) and still prunes range scans
    # across the fleet; SQLite, for development, makes it an ordinary index.
    __table_args__ = (sa.Index("ix_device_data_at", "at", postgresql_using="brin"),)

    device_id: int = Field(foreign_key="devices.id", primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    kind: str = Field(max_length=1, primary_key=True)  # "d" current data, "h" historical
    data: dict[str, Any] = Field(sa_type=_JSON)
    received_at: datetime = _created()
