"""The capability market: published capabilities and their orders.

capabilities gets visibility ('private', every existing row, or 'public') and price_cents (0), an
index listing the public ones newest first, and a unique index on the id of public ones (an order
names a public capability by its id alone). capability_orders: one row per order of a priced
capability, its id the order's task's and its escrow hold's.
Self-contained, as every revision is: later changes to the schema module do not change it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
_PUBLIC = sa.text("visibility = 'public'")


def upgrade() -> None:
    op.add_column(
        "capabilities", sa.Column("visibility", sa.Text, nullable=False, server_default=sa.text("'private'"))
    )
    op.add_column(
        "capabilities", sa.Column("price_cents", sa.BigInteger, nullable=False, server_default=sa.text("0"))
    )
    op.create_index("capabilities_public_newest", "capabilities", ["visibility", "created_at", "owner", "id"])
    op.create_index(
        "capabilities_public_id",
        "capabilities",
        ["id"],
        unique=True,
        sqlite_where=_PUBLIC,
        postgresql_where=_PUBLIC,
    )
    op.create_table(
        "capability_orders",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("buyer", sa.Text, nullable=False),
        sa.Column("seller", sa.Text, nullable=False),
        sa.Column("capability_id", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("demand_id", sa.Text),
        sa.Column("context_id", sa.Text),
        sa.Column("booked_hours", sa.Double),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("capability_orders_buyer", "capability_orders", ["buyer", "created_at", "id"])
    op.create_index("capability_orders_seller", "capability_orders", ["seller", "created_at", "id"])
    op.create_index("capability_orders_status", "capability_orders", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("capability_orders")
    op.drop_index("capabilities_public_id", table_name="capabilities")
    op.drop_index("capabilities_public_newest", table_name="capabilities")
    with op.batch_alter_table("capabilities", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_column("price_cents")
        batch.drop_column("visibility")
