"""The /v1 lists filtered by capability walk one index: sort keys copied into the capability rows.

node_capabilities gets the node's trust_score and task_capabilities the task's created_at and
status, each filled from its node or task; the indexes (capability, trust_score DESC, node_id),
(capability, created_at, task_id) and (capability, status, created_at, task_id) replace the
(capability, id) ones, so a page is read in order from the index and its total counted from the
index alone. The copies start with a default only to add the columns to existing rows; it is
dropped once they are filled (on SQLite by copying the table, as ALTER COLUMN cannot).
Self-contained, as every revision is: later changes to the schema module do not change it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
_NO_ROWID = {"sqlite_with_rowid": False}


def upgrade() -> None:
    op.drop_index("node_capabilities_capability", table_name="node_capabilities")
    op.drop_index("task_capabilities_capability", table_name="task_capabilities")
    op.add_column(
        "node_capabilities",
        sa.Column("trust_score", sa.Double, nullable=False, server_default=sa.text("0.5")),
    )
    op.execute(
        "UPDATE node_capabilities SET trust_score ="
        " (SELECT trust_score FROM nodes WHERE nodes.id = node_capabilities.node_id)"
    )
    op.add_column(
        "task_capabilities", sa.Column("created_at", _TIME, nullable=False, server_default=sa.text("0"))
    )
    op.add_column(
        "task_capabilities", sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'open'"))
    )
    op.execute(
        "UPDATE task_capabilities SET"
        " created_at = (SELECT created_at FROM platform_tasks WHERE platform_tasks.id = task_capabilities.task_id),"
        " status = (SELECT status FROM platform_tasks WHERE platform_tasks.id = task_capabilities.task_id)"
    )
    with op.batch_alter_table("node_capabilities", table_kwargs=_NO_ROWID) as batch:
        batch.alter_column("trust_score", server_default=None)
    with op.batch_alter_table("task_capabilities", table_kwargs=_NO_ROWID) as batch:
        batch.alter_column("created_at", server_default=None)
        batch.alter_column("status", server_default=None)
    op.create_index(
        "node_capabilities_trust", "node_capabilities", ["capability", sa.text("trust_score DESC"), "node_id"]
    )
    op.create_index("task_capabilities_newest", "task_capabilities", ["capability", "created_at", "task_id"])
    op.create_index(
        "task_capabilities_status_newest",
        "task_capabilities",
        ["capability", "status", "created_at", "task_id"],
    )
