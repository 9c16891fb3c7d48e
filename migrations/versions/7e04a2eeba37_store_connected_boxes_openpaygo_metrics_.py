"""Store connected boxes' OpenPAYGO Metrics data.

`device_data` holds each box's readings keyed by (device, time, kind), so a reading sent
twice is stored once. On PostgreSQL its time index is BRIN: rows arrive roughly in time
order, so the index stays a few pages for a year of hourly data from 10,000 boxes (SQLite,
for development, builds an ordinary index).

Revision ID: 7e04a2eeba37
Revises: c5bbecc8d12a
Create Date: 2026-12-02 01:20:49.332968
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7e04a2eeba37"
down_revision: str | None = "c5bbecc8d12a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metrics_data_formats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_table(
        "device_data",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"]),
        sa.PrimaryKeyConstraint("device_id", "at", "kind"),
    )
    op.create_index(
        "ix_device_data_at", "device_data", ["at"], unique=False, postgresql_using="brin"
    )
    op.create_table(
        "metrics_boxes",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("last_request_count", sa.BigInteger(), nullable=True),
        sa.Column("last_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("reported_token_count", sa.Integer(), nullable=True),
        sa.Column("data_format_id", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("base_url", sa.String(length=255), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["data_format_id"], ["metrics_data_formats.id"]),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"]),
        sa.PrimaryKeyConstraint("device_id"),
    )
    with op.batch_alter_table("metrics_boxes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_metrics_boxes_last_seen_at"), ["last_seen_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("metrics_boxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_metrics_boxes_last_seen_at"))
    op.drop_table("metrics_boxes")
    op.drop_index("ix_device_data_at", table_name="device_data", postgresql_using="brin")
    op.drop_table("device_data")
    op.drop_table("metrics_data_formats")
