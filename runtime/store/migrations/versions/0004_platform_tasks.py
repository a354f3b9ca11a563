"""The /v1 platform's task marketplace: platform_tasks and task_capabilities.

A task's budget is held in escrow by the ledger (0003) under a hold whose id is the task's.
Self-contained, as every revision is: later changes to the schema module do not change it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
_OPEN_WITH_DEADLINE = "status = 'open' AND deadline IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "platform_tasks",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("publisher", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("budget", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("assignee", sa.Text),
        sa.Column("acceptor", sa.Text),
        sa.Column("deadline", _TIME),
        sa.Column("deliverables", sa.Text),
        sa.Column("quality_notes", sa.Text),
        sa.Column("run_id", sa.Text),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("platform_tasks_status", "platform_tasks", ["status", "created_at"])
    op.create_index("platform_tasks_publisher", "platform_tasks", ["publisher"])
    op.create_index("platform_tasks_acceptor", "platform_tasks", ["acceptor"])
    op.create_index(
        "platform_tasks_open_deadline",
        "platform_tasks",
        ["deadline"],
        sqlite_where=sa.text(_OPEN_WITH_DEADLINE),
        postgresql_where=sa.text(_OPEN_WITH_DEADLINE),
    )
    op.create_table(
        "task_capabilities",
        sa.Column("task_id", sa.Text, sa.ForeignKey("platform_tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("capability", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("task_id", "capability"),
        sqlite_with_rowid=False,
    )
    op.create_index("task_capabilities_capability", "task_capabilities", ["capability", "task_id"])
