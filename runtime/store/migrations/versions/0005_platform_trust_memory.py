"""The /v1 platform's trust ratings and shared memory.

platform_trust_ratings: one rating per done task (the task id is the key, so a second rating of a
task is refused by the database itself). platform_memory with its participants and tags as rows,
each indexed by node and tag, so the visibility rule and both filters are index lookups.
Self-contained, as every revision is: later changes to the schema module do not change it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
_NO_ROWID = {"sqlite_with_rowid": False}


def upgrade() -> None:
    op.create_table(
        "platform_trust_ratings",
        sa.Column(
            "task_id", sa.Text, sa.ForeignKey("platform_tasks.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("agent_id", sa.Text, nullable=False),
        sa.Column("rater", sa.Text, nullable=False),
        sa.Column("quality_score", sa.Double, nullable=False),
        sa.Column("on_time", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("evidence", sa.Double, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_index("platform_trust_ratings_agent", "platform_trust_ratings", ["agent_id", "created_at"])
    op.create_table(
        "platform_memory",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_index("platform_memory_author", "platform_memory", ["author", "created_at"])
    for name, column in (("participants", "node_id"), ("tags", "tag")):
        table = f"platform_memory_{name}"
        op.create_table(
            table,
            sa.Column(
                "entry_id", sa.Text, sa.ForeignKey("platform_memory.id", ondelete="CASCADE"), nullable=False
            ),
            sa.Column(column, sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("entry_id", column),
            **_NO_ROWID,
        )
    op.create_index(
        "platform_memory_participants_node", "platform_memory_participants", ["node_id", "entry_id"]
    )
    op.create_index("platform_memory_tags_tag", "platform_memory_tags", ["tag", "entry_id"])
