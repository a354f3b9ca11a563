"""The agent platform's nodes, API keys and double-entry ledger.

Self-contained on purpose, like the baseline: later changes to :mod:`runtime.store.schema` must not
change what this revision creates.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
_ID: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NO_ROWID = {"sqlite_with_rowid": False}


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("nickname", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("password_hash", sa.Text),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("completed_tasks", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("trust_score", sa.Double, nullable=False, server_default=sa.text("0.5")),
        sa.Column("ratings_count", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_index("nodes_trust", "nodes", ["trust_score"])
    op.create_table(
        "node_capabilities",
        sa.Column("node_id", sa.Text, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("capability", sa.Text, primary_key=True),
        **_NO_ROWID,
    )
    op.create_index("node_capabilities_capability", "node_capabilities", ["capability", "node_id"])
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.Text, primary_key=True),
        sa.Column("node_id", sa.Text, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        **_NO_ROWID,
    )
    op.create_index("api_keys_node", "api_keys", ["node_id"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("task_id", sa.Text),
        sa.Column("memo", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("entry_id", _ID, sa.ForeignKey("ledger_entries.id"), primary_key=True, autoincrement=False),
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        **_NO_ROWID,
    )
    op.create_index("ledger_postings_account", "ledger_postings", ["account", "entry_id"])
    op.create_table(
        "ledger_balances",
        sa.Column("account", sa.Text, primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        **_NO_ROWID,
    )
    op.create_table(
        "ledger_holds",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("payer", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("settled_at", _TIME),
        **_NO_ROWID,
    )
