"""Index the payments waiting to be reconciled.

Drains claim the oldest `received` payment; without this partial index PostgreSQL walks
the primary key past every credited payment to find it. On PostgreSQL it is built
CONCURRENTLY, outside the migration's transaction.

Revision ID: fe83975841ca
Revises: e702345a8ab5
Create Date: 2026-11-24 02:16:06.605715
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fe83975841ca"
down_revision: str | None = "e702345a8ab5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = "status = 'received'"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Built without blocking the acknowledgements' INSERTs on a large table.
        with op.get_context().autocommit_block():
            op.create_index(
                "ix_payments_waiting",
                "payments",
                ["id"],
                unique=False,
                postgresql_where=sa.text(WAITING),
                postgresql_concurrently=True,
            )
        return
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payments_waiting", ["id"], unique=False, sqlite_where=sa.text(WAITING)
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_payments_waiting", postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING)
        )
