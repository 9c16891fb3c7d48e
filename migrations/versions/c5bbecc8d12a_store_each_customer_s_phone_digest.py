"""Store each customer's phone digest.

Daraja sends the payer's number as the SHA-256 of its digits. Kept beside the number and
indexed, a hashed payer is one look-up instead of hashing every customer's number.

Revision ID: c5bbecc8d12a
Revises: fe83975841ca
Create Date: 2026-11-24 03:06:41.550590
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5bbecc8d12a"
down_revision: str | None = "fe83975841ca"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

customers = sa.table(
    "customers",
    sa.column("id", sa.Integer),
    sa.column("phone", sa.String),
    sa.column("phone_digest", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_digest", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_customers_phone_digest"), ["phone_digest"], unique=False
        )
    conn = op.get_bind()
    rows = conn.execute(sa.select(customers.c.id, customers.c.phone)).all()
    for ident, phone in rows:  # the digest of the E.164 digits, as app.phones computes it
        digest = hashlib.sha256(phone.lstrip("+").encode()).hexdigest()
        conn.execute(customers.update().where(customers.c.id == ident).values(phone_digest=digest))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_phone_digest"))
        batch_op.drop_column("phone_digest")
