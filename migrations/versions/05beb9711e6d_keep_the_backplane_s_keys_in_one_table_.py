"""Keep the backplane's keys, counters and scored sets in one table when there is no Redis.

Without Redis, USSD sessions between hops and the wrong account numbers of the lookup
lockout were kept each in a table of their own; they are now entries of the database
backplane (paygo.backplane.database), like anything else the web processes share. The
lockout's failures of the last day are not carried over (a phone starts afresh), nor are
sessions in flight (the next hop starts at the first screen).

Revision ID: 05beb9711e6d
Revises: 1ad5e94deeb4
Create Date: 2026-12-02 02:46:34.334483
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "05beb9711e6d"
down_revision: str | None = "1ad5e94deeb4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backplane_entries",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("member", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "member"),
    )
    with op.batch_alter_table("backplane_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_backplane_entries_expires_at"), ["expires_at"], unique=False
        )
    with op.batch_alter_table("lookup_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lookup_failures_phone"))
    op.drop_table("lookup_failures")


def downgrade() -> None:
    op.create_table(
        "lookup_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lookup_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lookup_failures_phone"), ["phone"], unique=False)
    with op.batch_alter_table("backplane_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backplane_entries_expires_at"))
    op.drop_table("backplane_entries")
