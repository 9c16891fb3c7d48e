"""Tickets move through assignment to closing, with comments; plans can retire.

Tickets go new -> assigned -> in_progress -> resolved -> closed: the old `open` becomes
`new`, each ticket says who it is assigned to and when it last changed, and comments
(an operator's note, why it was assigned or closed) live in `ticket_comments`. A plan's
`retired_at` keeps it on its accounts while no new account is opened on it.

Revision ID: 1ad5e94deeb4
Revises: 7e04a2eeba37
Create Date: 2026-12-02 03:18:19.929597
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1ad5e94deeb4"
down_revision: str | None = "7e04a2eeba37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket_comments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_comments_ticket_id"), ["ticket_id"], unique=False
        )

    with op.batch_alter_table("payment_plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assigned_to", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    # Existing tickets: last changed when opened; `open` is now `new`.
    op.execute("UPDATE tickets SET updated_at = created_at")
    op.execute("UPDATE tickets SET status = 'new' WHERE status = 'open'")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.alter_column(
            "updated_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    op.execute("UPDATE tickets SET status = 'open' WHERE status <> 'closed'")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("assigned_to")

    with op.batch_alter_table("payment_plans", schema=None) as batch_op:
        batch_op.drop_column("retired_at")

    with op.batch_alter_table("ticket_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_comments_ticket_id"))

    op.drop_table("ticket_comments")
